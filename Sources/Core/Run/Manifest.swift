import Foundation

/// `manifest.json`: resolved configuration, versions, ranks, timings and each metric's variant.
public enum Manifest {
    /// How each reported quantity is defined (docs/metrics.md), recorded with the numbers.
    public static let variants: [String: String] = [
        "barrier_*_max_minus_mean": "max_a m(w(a)) - (m(w_a) + m(w_b))/2 over the alpha grid (Frankle et al. instability)",
        "barrier_*_max_minus_line": "max_a [m(w(a)) - ((1-a) m(w_a) + a m(w_b))]",
        "barrier_batch_norm": "recompute: running statistics reset and re-estimated (cumulative average) on fixed training batches at every alpha; interpolate: running statistics interpolated like the weights (the children's stored ones at the ends). The unsuffixed barrier columns and test_error_a/b (the curve's end points) follow barrier.bn_policy; BatchNorm networks also get *_interpolate and *_recompute columns (both policies) and a barrier_curves curve per policy (barrier_curves.batch_norm)",
        "batch_norm": "BatchNorm running statistics of every inference-mode analysis (analysis.batchnorm): recompute = reset and re-estimated (cumulative average, train-mode forwards) on analysis.recompute_batches fixed training batches of recipe.batch_size (RandomStream role batchNormRecompute, the barrier's procedure) before the analysis; running = as stored in the checkpoint (mean 0 / variance 1 at initialisation); none = the network has no BatchNorm. Applies to parent_timeline, child_pairs (pair metrics other than the barrier), timeline_pairs, ntk_spectrum, kernel_distance, kernel_velocity, ntk_machine*, linearized (the linearised model's frozen statistics and the nonlinear child's start) and hessian",
        "weight_l2": "||w_a - w_b||_2 over trainable parameters; normalized = l2 / sqrt(||w_a|| ||w_b||); cosine = <w_a,w_b>/(||w_a|| ||w_b||)",
        "function_disagreement": "fraction of test examples with different predicted labels; over_independent = D / (e_a + e_b - e_a e_b C/(C-1))",
        "relu_pattern_distance": "fraction of (probe example, ReLU unit) pairs whose pre-activation sign differs; BatchNorm in inference mode",
        "logit_gradient_alignment": "mean over classes c of cos(g_c(w), g_c(w')), g_c = grad_w mean_{probe} f_c; BatchNorm in inference mode",
        "parent_timeline": "errors and mean losses of the parent on the training subset and the test set; BatchNorm in inference mode",
        "ntk_gram": "empirical NTK K[(i,c),(j,c')] = <df_c(x_i)/dw, df_c'(x_j)/dw> over all trainable parameters on the class-balanced probe set, mC x mC, BatchNorm in inference mode; Jacobian rows in Float, Gram accumulated in Double",
        "kernel_distance": "S(K,K') = 1 - <K,K'>_F / (||K||_F ||K'||_F) on the full mC x mC Gram; kernel_distance_traced on the m x m logit-traced kernel (sum of the C diagonal blocks); child_pairs.kernel_distance on the full Gram",
        "kernel_velocity": "v(t) = S(K_t, K_{t+dt}) / dt on the full Gram",
        "ntk_spectrum": "eigenvalues of the full Gram by ScaLAPACK pdsyevd (LAPACK dsyevd on one rank), on one absolute grid of 9 significant digits of lambda_max (rank-count independent); effective_rank = (sum lambda)^2 / sum lambda^2; condition_number = lambda_max / lambda_min (inf if lambda_min <= 0); target_alignment = y^T K y / (||K||_F ||y||^2) with y the one-hot labels (mC vector); _traced = <T, Y Y^T>_F / (||T||_F ||Y Y^T||_F) on the traced kernel",
        "ntk_machine": "NTKScape addition (not the paper's Fig. 8): kernel regression with the full NTK of the parent at time t on kernel_machine.draws class-balanced draws of n training examples, one-hot targets; form offset: f(X*) = f_t(X*) + K(X*,X) (K + lambda I)^-1 (Y - f_t(X)); form kernel: K(X*,X) (K + lambda I)^-1 Y. lambda = ridge_relative * trace(K)/(nC) chosen from kernel_machine.ridges by the held-out squared loss (fit on the rest of the draw, every ridge from one eigendecomposition), then refitted on all n; train_error and train_residual = sqrt(mean (Y - f(X))^2) on the n examples; test error of argmax",
        "ntk_machine_ridges": "per draw and form, every ridge of the grid fitted on the fit part: held-out squared loss (mean over examples of sum_c (f_c - y_c)^2, 7 significant digits) and error; chosen = least loss (ties: larger ridge)",
        "ntk_machine_summary": "per parent time and form over the draws: mean, sample standard deviation, min and max of the test error; mean train error and residual; geometric mean of the chosen relative ridges",
        "linearized": "f_lin(x; w) = f(x; w_t) + J_t(x)(w - w_t), BatchNorm frozen in inference mode, trained with linearized.optimizer at a constant rate on linearized.loss for linearized.epochs (a learning-rate grid is decided by the lowest loss on linearized.held_out class-balanced training examples after grid_epochs on the rest, table linearized_grid); the nonlinear model is an ordinary child from the same checkpoint with a fresh linearized.child.optimizer (default the recipe's) at linearized.child.learning_rate on the same batches, until its epoch-mean training loss plateaus (patience, tolerance) or child.epochs; one run of each per child seed",
        "second_order": "linearized.second_order: f2(x; w) = f(x; w_t) + J_t(x) d + f''_t(x)[d, d] / 2, d = w - w_t, f'' the exact second directional derivative in the weights (ReLU/max-pool gates of w_t), BatchNorm frozen in inference mode as in f_lin; gradient J^T g + (sum_k g_k Hessian(f_k)) d by forward-over-reverse; trained with the linearised model's settings, learning rate (grid choice) and batches; rows model second_order in linearized, second_order_* columns in nonlinear_advantage(_summary)",
        "nonlinear_advantage": "e(linearised) - e(nonlinear child) per seed, test errors at the end of both runs (positive: the nonlinear child is better); nonlinear_advantage_summary: mean, sample standard deviation, min and max over seeds and how the children stopped",
        "hessian": "Hessian of the mean training loss (+ the L2 term of the recipe's weight decay) on the first hessian.examples training examples, BatchNorm in inference mode, by hessian.method Hessian-vector products (exact: forward-over-reverse; finite_difference: central differences over relative_step |w|): top hessian.top_k eigenvalues by Lanczos (hessian_eigenvalues, with the fraction of each Ritz vector in the span of the logit-gradient centroids), Hutchinson trace, stochastic-Lanczos-quadrature density (hessian_density, hessian_quadrature); escape ratios eta*lambda/2 and eta*lambda/(2(1+mu)) with eta the scheduled learning rate, and Fort et al. Eq. 10 for the optimiser's own update u (from the checkpoint's optimiser state): eta u'Hu/2 - g'u and eta u'Hu/(2 g'u)",
    ]

    /// Writes `manifest.json`. Every invocation of `ntkscape run` that reaches the end adds one entry
    /// to `sessions` (what ran, where and when), keeping those of earlier invocations; the
    /// top-level `started` is the first session's, `finished`, `command`, `ranks` and
    /// `threads_per_rank` the latest one's (docs/run-directory.md).
    public static func write(config: ExperimentConfig, paths: RunPaths, plan: TaskPlan, records: [TaskRecord], ranks: Int,
                             threads: Int, wallSeconds: Double, started: Date? = nil, hosts: [String] = [],
                             ran: Set<String> = [], command: [String] = CommandLine.arguments) throws {
        let seconds = Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0.seconds) })
        let busy = plan.ranks.map { $0.reduce(0.0) { $0 + (seconds[$1.task] ?? 0) } }
        let finished = Self.timestamp(Date())
        func timing(_ r: TaskRecord) -> [String: Any] {
            guard let t = r.timing else { return ["id": r.id, "seconds": r.seconds] }
            return ["id": r.id, "rank": t.rank, "ranks": t.ranks, "host": t.host, "started": t.started,
                    "finished": t.finished, "seconds": t.seconds]
        }
        let session: [String: Any] = [
            "started": started.map(Self.timestamp) ?? "",
            "finished": finished,
            "wall_seconds": wallSeconds,
            "command": command.joined(separator: " "),
            "ntkscape_version": NTKScapeVersion.string,
            "ranks": ranks,
            "threads_per_rank": threads,
            "hosts": hosts,
            "tasks": records.filter { ran.contains($0.id) }.sorted { $0.id < $1.id }.map(timing),
        ]
        let sessions = previousSessions(paths.manifest) + [session]
        let object: [String: Any] = [
            "ntkscape_version": NTKScapeVersion.string,
            "config": (try? JSONSerialization.jsonObject(with: Data(config.canonicalJSON().utf8))) ?? [:],
            "run_directory": paths.runDirectory,
            "command": command.joined(separator: " "),
            "started": sessions.first?["started"] ?? "",
            "finished": finished,
            "ranks": ranks,
            "threads_per_rank": threads,
            "hosts": hosts,
            "openblas": BLASThreads.config,
            "openblas_kernels": BLASKernels.coreName,
            "sessions": sessions,
            "timings": [
                "wall_seconds": wallSeconds,
                "makespan_seconds": wallSeconds,
                "rank_busy_seconds": busy,
                "task_seconds": seconds,
                "tasks": records.sorted { $0.id < $1.id }.map(timing),
                "note": "task seconds as measured when each task ran (possibly in an earlier, interrupted invocation); rank busy = sum over the tasks the plan gives that rank; wall_seconds: the latest session",
            ] as [String: Any],
            "plan": ["makespan_units": plan.makespan, "rank_busy_units": plan.busy,
                     "assignment": plan.ranks.map { $0.map(\.task) }] as [String: Any],
            "variants": variants,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: paths.manifest)
    }

    /// The sessions of an existing manifest; a manifest written before sessions were recorded
    /// gives its one invocation as a session.
    static func previousSessions(_ path: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path),
              let old = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
        if let sessions = old["sessions"] as? [[String: Any]] { return sessions }
        var session: [String: Any] = [:]
        for key in ["started", "finished", "command", "ntkscape_version", "ranks", "threads_per_rank"] { session[key] = old[key] }
        session["wall_seconds"] = (old["timings"] as? [String: Any])?["wall_seconds"]
        return session.isEmpty ? [] : [session]
    }

    /// ISO 8601 in UTC, seconds (`2026-12-03T07:51:32Z`).
    public static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
