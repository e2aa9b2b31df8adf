// swift-tools-version:5.9
import PackageDescription

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
        .target(name: "Core", dependencies: ["CLinAlg", "CZlib", .product(name: "Yams", package: "Yams")]),
        // MPI communicator, BLACS grids, distributed matrices, ScaLAPACK drivers.
        .target(name: "Parallel", dependencies: ["Core", "MPIShim", "CLinAlg"]),
        .executableTarget(name: "ntkscape", dependencies: [
            "Core", "Parallel",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "ParallelTests", dependencies: ["Parallel", "Core", "ntkscape"]),
    ]
)
