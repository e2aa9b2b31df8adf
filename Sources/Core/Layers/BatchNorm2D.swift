/// Batch normalisation over each channel (PyTorch `BatchNorm2d`, momentum 0.1, eps 1e-5).
///
/// train: `xhat = (x - mu_B) / sqrt(var_B + eps)`, `y = gamma*xhat + beta`, with `mu_B`, `var_B`
/// (biased) over the `N*H*W` values of the channel; running statistics updated as
/// `r <- (1-m) r + m * stat` with the *unbiased* batch variance (as PyTorch does).
/// eval: the same with running statistics, an affine per-channel map.
/// Parameters `weight`, `bias` `[C]`; state `running_mean`, `running_var` `[C]`.
public final class BatchNorm2D<T: Real>: Layer {
    public typealias Scalar = T
    public let inShape: Shape
    public var outShape: Shape { inShape }
    public let weightOffset: Int, biasOffset: Int, meanOffset: Int, varOffset: Int
    public let eps: T = 1e-5
    /// Running-statistics momentum; `nil` = cumulative average over batches since the last reset
    /// (PyTorch's `momentum=None`, used when re-estimating statistics at interpolated weights).
    public var momentum: T? = 0.1
    /// Batches seen since the statistics were reset (PyTorch's `num_batches_tracked`).
    public var batchesTracked = 0
    /// Per-channel batch mean and `1/sqrt(var+eps)` of the last forward (train mode).
    private let mean: Buffer<T>, invStd: Buffer<T>

    public init(_ name: String, shape: Shape, layout: ParameterLayout) {
        inShape = shape
        weightOffset = layout.addParameter("\(name).weight", [shape.c])
        biasOffset = layout.addParameter("\(name).bias", [shape.c])
        meanOffset = layout.addState("\(name).running_mean", [shape.c])
        varOffset = layout.addState("\(name).running_var", [shape.c])
        mean = Buffer(count: shape.c)
        invStd = Buffer(count: shape.c)
    }

    /// Sets `weight = 1`, `bias = 0`, `running_mean = 0`, `running_var = 1` (PyTorch's defaults).
    public func initialize(params: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>) {
        (params + weightOffset).update(repeating: 1, count: inShape.c)
        (params + biasOffset).update(repeating: 0, count: inShape.c)
        resetRunningStatistics(state: state)
    }

    public func resetRunningStatistics(state: UnsafeMutablePointer<T>) {
        (state + meanOffset).update(repeating: 0, count: inShape.c)
        (state + varOffset).update(repeating: 1, count: inShape.c)
        batchesTracked = 0
    }

    /// Fills `mean`/`invStd` with the statistics the current mode normalises with.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func statistics(_ x: UnsafePointer<T>, count: Int, _ ctx: LayerContext<T>) {
        let mean = mean.pointer, invStd = invStd.pointer, eps = eps, meanOffset = meanOffset, varOffset = varOffset
        let m = momentum ?? 1 / T(batchesTracked + 1)
        Workers.split(inShape.c, cost: 2 * count) { channels in
        for c in channels {
            if ctx.mode == .eval {
                mean[c] = ctx.state[meanOffset + c]
                invStd[c] = 1 / T.sqrt(ctx.state[varOffset + c] + eps)
                continue
            }
            let p = x + c * count
            let mu = Reduce.sum(p, count: count) / T(count)
            let v = Reduce.squaredDeviations(p, mean: mu, count: count) / T(count)
            mean[c] = mu
            invStd[c] = 1 / T.sqrt(v + eps)
            let unbiased = count > 1 ? v * T(count) / T(count - 1) : v
            ctx.state[meanOffset + c] = (1 - m) * ctx.state[meanOffset + c] + m * mu
            ctx.state[varOffset + c] = (1 - m) * ctx.state[varOffset + c] + m * unbiased
        }
        }
        if ctx.mode == .train { batchesTracked += 1 }
    }

    /// `statistics` in training mode for one shard of a batch: the mean and the (biased) variance
    /// of each channel over the whole batch, in one exchange (`ShardSums`, in Double). Each shard
    /// contributes its sum `S_s` and `M2_s + S_s²/n_s`, where `M2_s = Σ(x - a_s)²` is its squared
    /// deviations from its own mean `a_s` (two passes over the shard, back to back while it is in
    /// cache); summed over the shards, `Σ M2_s + Σ S_s²/n_s - S²/n` is the batch's `Σ(x - μ)²`
    /// (Chan et al.'s pairwise update: `Σ S_s²/n_s - S²/n = Σ_s n_s (m_s - μ)²`, the spread of the
    /// shards' means, formed in Double, whose 16 digits cover the cancellation against `n μ²` for any
    /// Float data; the within-shard variance comes from the shards' own deviations, as in a direct
    /// two-pass sum). Checked against the whole-batch step in `DataParallelTests`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private func shardStatistics(_ x: UnsafePointer<T>, count: Int, _ sums: ShardSums, _ ctx: LayerContext<T>) {
        let channels = inShape.c, total = Double(sums.batchExamples * inShape.plane), local = Double(count)
        let mean = mean.pointer, invStd = invStd.pointer, eps = eps, meanOffset = meanOffset, varOffset = varOffset
        let m = momentum ?? 1 / T(batchesTracked + 1)
        var partial = [Double](repeating: 0, count: 2 * channels)
        partial.withUnsafeMutableBufferPointer { s in
            for c in 0..<channels where count > 0 {
                let p = x + c * count, sum = Reduce.sum(p, count: count)
                let deviations = Reduce.squaredDeviations(p, mean: sum / T(count), count: count)
                s[c] = Double(sum)
                s[channels + c] = Double(deviations) + s[c] * s[c] / local
            }
            sums.sumOverShards(s)
            for c in 0..<channels {
                let mu = s[c] / total, squares = max(0, s[channels + c] - s[c] * mu)
                let v = squares / total, unbiased = total > 1 ? squares / (total - 1) : v
                mean[c] = T(mu)
                invStd[c] = T(1 / (v + Double(eps)).squareRoot())
                ctx.state[meanOffset + c] = (1 - m) * ctx.state[meanOffset + c] + m * mean[c]
                ctx.state[varOffset + c] = (1 - m) * ctx.state[varOffset + c] + m * T(unbiased)
            }
        }
        batchesTracked += 1
    }

    public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        forward(x, y, n: n, ctx, relu: false)
    }

    /// `forward`, with `relu` followed by `max(·, 0)` in the same pass (`y` then holds the ReLU's
    /// output; `LayerChain` fuses a BatchNorm and the ReLU after it this way in training shards).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>, relu: Bool) {
        let count = n * inShape.plane
        if ctx.mode == .train, let sums = ctx.shardSums {
            shardStatistics(x, count: count, sums, ctx)
        } else {
            statistics(x, count: count, ctx)
        }
        let mean = mean.pointer, invStd = invStd.pointer, w = ctx.params + weightOffset, b = ctx.params + biasOffset
        Workers.split(inShape.c, cost: count) { channels in
            for c in channels {
                let scale = w[c] * invStd[c], shift = b[c] - mean[c] * scale
                let p = x + c * count, q = y + c * count
                if relu {
                    for i in 0..<count { let v = p[i] * scale + shift; q[i] = v <= 0 ? 0 : v }   // as `ReLU.forward`
                } else {
                    for i in 0..<count { q[i] = p[i] * scale + shift }
                }
            }
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward(x: UnsafePointer<T>, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                         dx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        let count = n * inShape.plane
        let mean = mean.pointer, invStd = invStd.pointer, weightOffset = weightOffset, biasOffset = biasOffset
        let overwrite = ctx.overwriteInputGradient
        // One shard of a batch in training mode: this shard's sums, and the means of g and g x̂ over the whole batch.
        let shard = ctx.mode == .train ? ctx.shardSums.map { shardGradientSums(x: x, dy: dy, count: count, $0) } : nil
        let channelCount = inShape.c
        Workers.split(inShape.c, cost: 3 * count) { channels in
        for c in channels {
            let p = x + c * count, g = dy + c * count
            let mu = mean[c], s = invStd[c], gamma = ctx.params[weightOffset + c]
            let (sumG, sumGXc) = shard.map { ($0.local[c], $0.local[channelCount + c]) }
                ?? Reduce.sumAndDeviationProduct(g, p, mean: mu, count: count)
            let sumGX = sumGXc * s
            if ctx.parameterGradients {
                ctx.grads[weightOffset + c] += sumGX
                ctx.grads[biasOffset + c] += sumG
            }
            guard let dx else { continue }
            let d = dx + c * count
            // eval: dx = gamma*s * g; train: dx = gamma*s * (g - mean(g) - xhat * mean(g*xhat)),
            // both `k g + a (x - mu) + b` with per-channel constants.
            let k = gamma * s
            let (a, b): (T, T)
            if ctx.mode == .eval {
                (a, b) = (0, 0)
            } else {
                let (mg, mgx) = shard.map { ($0.batchMeans[c], $0.batchMeans[channelCount + c] * s) } ?? (sumG / T(count), sumGX / T(count))
                (a, b) = (-k * s * mgx, -k * mg)
            }
            if overwrite {
                for i in 0..<count { d[i] = k * g[i] + (a * (p[i] - mu) + b) }
            } else {
                for i in 0..<count { d[i] += k * g[i] + (a * (p[i] - mu) + b) }
            }
        }
        }
    }

    /// Training-mode backward of one shard: per channel, this shard's `Σg` and `Σg (x - μ)` (`[C]`
    /// then `[C]`; its parameter gradients) and their means over the whole batch (the shards' sums
    /// summed over the shards).
    private func shardGradientSums(x: UnsafePointer<T>, dy: UnsafePointer<T>, count: Int, _ sums: ShardSums)
        -> (local: [T], batchMeans: [T]) {
        let channels = inShape.c, total = Double(sums.batchExamples * inShape.plane), mean = mean.pointer
        var local = [T](repeating: 0, count: 2 * channels)
        for c in 0..<channels {
            (local[c], local[channels + c]) = Reduce.sumAndDeviationProduct(dy + c * count, x + c * count, mean: mean[c], count: count)
        }
        var partial = local.map { Double($0) }
        partial.withUnsafeMutableBufferPointer { sums.sumOverShards($0) }
        return (local, partial.map { T($0 / total) })
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?,
                    ty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        precondition(ctx.shardSums == nil, "BatchNorm2D: tangents of a shard's training-mode statistics are not implemented")
        let count = n * inShape.plane
        let mean = mean.pointer, invStd = invStd.pointer, weightOffset = weightOffset, biasOffset = biasOffset
        Workers.split(inShape.c, cost: 3 * count) { channels in
        for c in channels {
            let p = x + c * count, q = ty + c * count
            let mu = mean[c], s = invStd[c], gamma = ctx.params[weightOffset + c]
            let tGamma = ctx.tangent.map { $0[weightOffset + c] } ?? 0
            let tBeta = ctx.tangent.map { $0[biasOffset + c] } ?? 0
            for i in 0..<count { q[i] = tGamma * (p[i] - mu) * s + tBeta }
            guard let tx else { continue }
            let t = tx + c * count
            if ctx.mode == .eval {
                let k = gamma * s
                for i in 0..<count { q[i] += k * t[i] }
            } else {
                // d xhat = s * (dx - mean(dx) - xhat * mean(xhat * dx))
                let (st, xt) = Reduce.sumAndDeviationProduct(t, p, mean: mu, count: count)
                let mt = st / T(count), mxt = xt * s / T(count), k = gamma * s
                for i in 0..<count { q[i] += k * (t[i] - mt - (p[i] - mu) * s * mxt) }
            }
        }
        }
    }

    /// Inference mode only: `y = γ s (x - μ) + β` with the running statistics (`s = 1/sqrt(σ² + eps)`)
    /// is affine in `x` and bilinear in `(γ, x)`, so along `(γ + εγ̇, β + εβ̇)`
    ///
    ///     ty  = γ̇ s (x - μ) + β̇ + γ s tx           (as `jvp`)
    ///     tty = γ s ttx + 2 γ̇ s tx
    ///
    /// In train mode the batch statistics make every example depend on the others; the analyses
    /// freeze BatchNorm, so that mode is refused.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func jvp2(x: UnsafePointer<T>, y: UnsafePointer<T>, tx: UnsafePointer<T>?, ttx: UnsafePointer<T>?,
                     ty: UnsafeMutablePointer<T>, tty: UnsafeMutablePointer<T>, n: Int, _ ctx: LayerContext<T>) {
        precondition(ctx.mode == .eval, "BatchNorm2D.jvp2: second-order tangents are implemented for inference mode "
                     + "(running statistics) only, as the second-order Taylor model freezes BatchNorm; use mode .eval")
        let count = n * inShape.plane
        let mean = mean.pointer, invStd = invStd.pointer, weightOffset = weightOffset, biasOffset = biasOffset
        Workers.split(inShape.c, cost: 4 * count) { channels in
        for c in channels {
            let p = x + c * count, q = ty + c * count, r = tty + c * count
            let mu = mean[c], s = invStd[c], k = ctx.params[weightOffset + c] * s
            let tGamma = ctx.tangent.map { $0[weightOffset + c] } ?? 0
            let tBeta = ctx.tangent.map { $0[biasOffset + c] } ?? 0
            let a2 = 2 * tGamma * s
            switch (tx.map { $0 + c * count }, ttx.map { $0 + c * count }) {
            case let (t?, tt?):
                for i in 0..<count {
                    q[i] = (tGamma * (p[i] - mu) * s + tBeta) + k * t[i]
                    r[i] = k * tt[i] + a2 * t[i]
                }
            case let (t?, nil):
                for i in 0..<count {
                    q[i] = (tGamma * (p[i] - mu) * s + tBeta) + k * t[i]
                    r[i] = a2 * t[i]
                }
            case let (nil, tt?):
                for i in 0..<count {
                    q[i] = tGamma * (p[i] - mu) * s + tBeta
                    r[i] = k * tt[i]
                }
            case (nil, nil):
                for i in 0..<count { q[i] = tGamma * (p[i] - mu) * s + tBeta }
                r.update(repeating: 0, count: count)
            }
        }
        }
    }

    /// The tangent of `backward` along the input tangent `t = tx`, the weight tangent `γ̇` and the
    /// output-gradient tangent `ġ = tdy` (`g = dy`, `x̂ = (x - μ) s`, `s = 1/sqrt(σ² + eps)`, means over
    /// the channel's `N H W` values):
    ///
    ///     eval:  d(dx) = γ̇ s g + γ s ġ             d(dγ) = Σ ġ x̂ + s Σ g t        d(dβ) = Σ ġ
    ///     train: x̂' = s (t - mean t - x̂ mean(x̂ t)),  s' = -s² mean(x̂ t),  k = γ s,  k' = γ̇ s + γ s'
    ///            r = g - mean g - x̂ mean(g x̂),  r' = ġ - mean ġ - x̂' mean(g x̂) - x̂ (mean(ġ x̂) + mean(g x̂'))
    ///            d(dx) = k' r + k r'              d(dγ) = Σ (ġ x̂ + g x̂')            d(dβ) = Σ ġ
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backwardTangent(x: UnsafePointer<T>, tx: UnsafePointer<T>?, y: UnsafePointer<T>, dy: UnsafePointer<T>,
                                tdy: UnsafePointer<T>, tdx: UnsafeMutablePointer<T>?, n: Int, _ ctx: LayerContext<T>) {
        precondition(ctx.shardSums == nil, "BatchNorm2D: tangents of a shard's training-mode statistics are not implemented")
        let count = n * inShape.plane, nf = T(count)
        let mean = mean.pointer, invStd = invStd.pointer, weightOffset = weightOffset, biasOffset = biasOffset
        Workers.split(inShape.c, cost: 6 * count) { channels in
        for c in channels {
            let p = x + c * count, g = dy + c * count, tg = tdy + c * count
            let mu = mean[c], s = invStd[c], gamma = ctx.params[weightOffset + c]
            let tGamma = ctx.tangent.map { $0[weightOffset + c] } ?? 0
            let (sumTG, sumTGXc) = Reduce.sumAndDeviationProduct(tg, p, mean: mu, count: count)
            ctx.grads[biasOffset + c] += sumTG
            // Σ ġ x̂ and, with an input tangent, Σ t, Σ t x̂, Σ g t.
            let sumTGX = sumTGXc * s
            var (sumT, sumTX, sumGT): (T, T, T) = (0, 0, 0)
            if let tx {
                let t = tx + c * count
                let (a, b) = Reduce.sumAndDeviationProduct(t, p, mean: mu, count: count)
                (sumT, sumTX) = (a, b * s)
                sumGT = Reduce.sumAndDeviationProduct(g, t, mean: 0, count: count).1
            }
            if ctx.mode == .eval {
                ctx.grads[weightOffset + c] += sumTGX + s * sumGT
                guard let tdx else { continue }
                let d = tdx + c * count, a = tGamma * s, b = gamma * s
                for i in 0..<count { d[i] += a * g[i] + b * tg[i] }
                continue
            }
            let (sumG, sumGXc) = Reduce.sumAndDeviationProduct(g, p, mean: mu, count: count)
            let mg = sumG / nf, mgx = sumGXc * s / nf, mt = sumT / nf, mtx = sumTX / nf
            let mtg = sumTG / nf, mtgx = sumTGX / nf
            // mean(g x̂') = s (mean(g t) - mean(t) mean(g) - mean(x̂ t) mean(g x̂))
            let mgxt = s * (sumGT / nf - mt * mg - mtx * mgx)
            ctx.grads[weightOffset + c] += nf * (mtgx + mgxt)
            guard let tdx else { continue }
            let k = gamma * s, kt = tGamma * s - gamma * s * s * mtx, m2 = mtgx + mgxt
            let d = tdx + c * count, t = tx.map { $0 + c * count }
            for i in 0..<count {
                let xh = (p[i] - mu) * s
                let xht = t.map { s * ($0[i] - mt - xh * mtx) } ?? 0
                let r = g[i] - mg - xh * mgx
                let rt = tg[i] - mtg - xht * mgx - xh * m2
                d[i] += kt * r + k * rt
            }
        }
        }
    }

    public var forwardFlops: Int { 2 * inShape.count }
    public func backwardFlops(inputGradient: Bool) -> Int { 4 * inShape.count }
    public var overwritesInputGradient: Bool { true }
}
