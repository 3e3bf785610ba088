// swift-tools-version:6.0
// FleetAdapt: a coordinator that adapts deep networks across a fleet of edge devices,
// and the device agent that trains adapters on the device. See README.md and DESIGN notes.
import PackageDescription

let package = Package(
    name: "FleetAdapt",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fleetadapt-coordinator", targets: ["fleetadapt-coordinator"]),
        .executable(name: "fleetadapt-agent", targets: ["fleetadapt-agent"]),
        .executable(name: "fleetadapt-edge", targets: ["fleetadapt-edge"]),
        .executable(name: "fleetadapt", targets: ["fleetadapt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C shims: a module map and a one-line header each, nothing else.
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd",
                       providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Faces over C: the only modules that touch pointers of their library.
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD"]),
        .target(name: "PostgresClient", dependencies: ["CLibPQ"]),

        // Pure domain.
        .target(name: "Learning", dependencies: ["COpenBLAS", "CZlib"]),
        .target(name: "Planner"),
        .target(name: "FleetAPI"),
        // Rollout policy: waves, battery and energy caps, the wave decision, retry backoff. No SQL, no HTTP.
        .target(name: "Rollout", dependencies: ["FleetAPI"]),
        // ONNX import: the committed generated onnx.pb.swift, and the validated graph IR with shape inference.
        .target(name: "ONNX", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "ElasticModel", dependencies: ["Learning", .product(name: "Crypto", package: "swift-crypto")]),

        // Services.
        .target(name: "Coordinator", dependencies: [
            "HTTPServer", "PostgresClient", "Planner", "FleetAPI", "Rollout", "Learning", "ElasticModel",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The typed blocking HTTP client of the coordinator's API and the package cache (agent, edge, CLI).
        .target(name: "FleetClient", dependencies: ["FleetAPI", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Agent", dependencies: ["FleetAPI", "FleetClient", "Learning", "ElasticModel"]),
        // The edge half of split inference; it reaches the coordinator through FleetClient.
        .target(name: "EdgeRuntime", dependencies: ["FleetClient", "HTTPServer", "FleetAPI", "Learning", "ElasticModel"]),

        // Executables.
        .executableTarget(name: "fleetadapt-coordinator", dependencies: [
            "Coordinator", "PostgresClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt-agent", dependencies: [
            "Agent", "FleetAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt-edge", dependencies: [
            "EdgeRuntime", "HTTPServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt", dependencies: [
            "Planner", "Coordinator", "PostgresClient", "Learning", "ElasticModel", "FleetAPI", "FleetClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Tests.
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer"]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient"]),
        .testTarget(name: "LearningTests", dependencies: ["Learning"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner"]),
        .testTarget(name: "RolloutTests", dependencies: ["Rollout", "FleetAPI"]),
        .testTarget(name: "ONNXTests", dependencies: [
            "ONNX", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], exclude: ["Fixtures"]),
        .testTarget(name: "ElasticModelTests", dependencies: ["ElasticModel", "Learning"]),
        .testTarget(name: "FleetClientTests", dependencies: ["FleetClient", "FleetAPI", "HTTPServer"]),
        .testTarget(name: "CoordinatorTests", dependencies: [
            "Coordinator", "PostgresClient", "HTTPServer", "FleetAPI", "Rollout", "Learning", "ElasticModel", "EdgeRuntime",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
