// swift-tools-version:6.0
import PackageDescription

// Modules are imported in one direction only:
//   C shims → AdapterIO, Kernels → MergeEngine → Adaptive, WireProtocol → Coordinator, Worker → Cluster → BrickyardCLI
let package = Package(
    name: "Brickyard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "brickyard", targets: ["BrickyardCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // SHA-256 for checkpoint records and the job hash (BoringSSL on Linux).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Prometheus exposition of the coordinator's metrics (`--metrics-bind`).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: expose C only.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
        .target(
            name: "CBrickyardProto",
            path: "Sources/CBrickyardProto",
            cSettings: [.unsafeFlags(["-Wno-everything"])],
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),

        // Hand-vectorised C with runtime CPU dispatch and bit-identical paths: k-means row dots, CRC-32C.
        .target(name: "CSIMD", path: "Sources/CSIMD"),

        // safetensors and PEFT adapter directories.
        .target(name: "AdapterIO"),
        // BLAS/LAPACK wrappers and the numerical building blocks every merge method shares.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CSIMD"]),
        // Merge methods, job files, planning, output assembly and the report.
        .target(name: "MergeEngine", dependencies: [
            "AdapterIO", "Kernels",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Adaptive merging without a transport: task data, selection, coefficient layouts, optimisers, the run
        // loop against an evaluation backend, the learned merge's assembly and report.
        .target(name: "Adaptive", dependencies: [
            "MergeEngine", "AdapterIO", "Kernels",
            .product(name: "Yams", package: "Yams"),
        ]),
        // ZeroMQ transport and protobuf-c message codec.
        .target(name: "WireProtocol", dependencies: [
            "CZeroMQ", "CBrickyardProto", "CSIMD", "MergeEngine", "Kernels",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Coordinator", dependencies: [
            "WireProtocol", "MergeEngine", "AdapterIO", "Kernels", "Adaptive",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "Worker", dependencies: [
            "WireProtocol", "MergeEngine", "AdapterIO", "Kernels",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Cluster submission: run directories, Slurm batch scripts, Kubernetes JobSets, the step launcher, status.
        .target(name: "Cluster", dependencies: [
            "Coordinator", "MergeEngine", "AdapterIO", "WireProtocol",
            .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(name: "BrickyardCLI", dependencies: [
            "AdapterIO", "MergeEngine", "Adaptive", "WireProtocol", "Coordinator", "Worker", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Runs the built `brickyard` for the tests that check it as a user would.
        .target(name: "BrickyardTestSupport", dependencies: ["Kernels"], path: "Tests/TestSupport"),
        .testTarget(name: "AdapterIOTests", dependencies: ["AdapterIO", "BrickyardTestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "MergeEngineTests", dependencies: ["MergeEngine", "AdapterIO", "Kernels", "BrickyardTestSupport"]),
        .testTarget(name: "AdaptiveTests", dependencies: [
            "Adaptive", "MergeEngine", "AdapterIO", "Coordinator", "WireProtocol", "BrickyardTestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ClusterTests", dependencies: [
            "Cluster", "Coordinator", "WireProtocol", "BrickyardTestSupport", .product(name: "Yams", package: "Yams"),
        ]),
        .testTarget(name: "RuntimeTests", dependencies: ["BrickyardTestSupport", "WireProtocol", "Coordinator", "Worker", "MergeEngine", "AdapterIO", "Kernels"]),
    ],
    swiftLanguageModes: [.v6]
)
