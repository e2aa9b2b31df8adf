// swift-tools-version:5.9
import Foundation
import PackageDescription

// Instruction set of the Swift loops (im2col, BatchNorm, ReLU, reductions; the GEMMs are
// OpenBLAS's, which picks its kernels at run time). haswell = AVX2 + FMA, every x86 server CPU
// since 2013 (Haswell, Zen). Override with NTKSCAPE_TARGET_CPU (e.g. `native`, or `x86-64` for an
// older CPU); results do not depend on it (no FMA contraction; reductions have a fixed order —
// checked: one ResNet-20 epoch writes the same checkpoint bytes with `x86-64` and `haswell`).
// SwiftPM accepts these flags in a root package, which is how NTKScape is built.
#if arch(x86_64)
let targetCPU = ProcessInfo.processInfo.environment["NTKSCAPE_TARGET_CPU"] ?? "haswell"
let coreSwiftSettings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", targetCPU])]
#else
let coreSwiftSettings: [SwiftSetting] = []
#endif

// Internal symbols stay visible to `@testable import` in release builds (`swift test -c release`).
let testableSettings: [SwiftSetting] = [.unsafeFlags(["-enable-testing"])]

let package = Package(
    name: "NTKScape",
    products: [
        .executable(name: "ntkscape", targets: ["ntkscape"]),
        .library(name: "Core", targets: ["Core"]),
        .library(name: "Parallel", targets: ["Parallel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // System libraries. pkg-config supplies Open MPI's include/library flags to every dependent.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CLinAlg", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // C shim: accessors for Open MPI's handle macros and BLACS/ScaLAPACK prototypes. No logic.
        .target(name: "MPIShim", dependencies: ["CMPI"],
                linkerSettings: [.linkedLibrary("scalapack-openmpi")]),
        // Numerics, data, training, metrics. Never imports MPI.
        .target(name: "Core", dependencies: ["CLinAlg", "CZlib", .product(name: "Yams", package: "Yams")],
                swiftSettings: coreSwiftSettings),
        // MPI communicator, BLACS grids, distributed matrices, ScaLAPACK drivers.
        .target(name: "Parallel", dependencies: ["Core", "MPIShim", "CLinAlg"]),
        // SVG figures from chart specifications (Foundation only; no Core, no MPI).
        // `-enable-testing`: their tests use `@testable import` and the suite runs in release mode.
        .target(name: "Plot", swiftSettings: testableSettings),
        // Figures of a run's tables and the HTML report (Core's row types, Plot's SVG; no MPI).
        .target(name: "Report", dependencies: ["Core", "Plot"], swiftSettings: testableSettings),
        .executableTarget(name: "ntkscape", dependencies: [
            "Core", "Parallel", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Helpers every test target shares: tolerances and the per-entry closeness assertion,
        // deterministic test inputs, naive reference solvers (XCTest and Foundation only).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CoreTests", dependencies: ["Core", "TestSupport"]),
        .testTarget(name: "PlotTests", dependencies: ["Plot", "TestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Core", "Plot", "CZlib", "TestSupport"]),
        .testTarget(name: "ParallelTests", dependencies: ["Parallel", "Core", "ntkscape", "TestSupport"]),
    ]
)
