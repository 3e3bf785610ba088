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
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // C shims: a module map and a one-line header each, nothing else.
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd",
                       providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Faces over C: the only modules that touch pointers of their library.
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD", .product(name: "Logging", package: "swift-log")]),
        .target(name: "PostgresClient", dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")]),
        // What every executable shares: --version, FLEETADAPT_* defaults for every flag, the log handlers
        // (json, logfmt, text) and their bootstrap, and the exit path of runtime errors.
        .target(name: "CommandSupport", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Pure domain.
        .target(name: "Learning", dependencies: ["COpenBLAS", "CZlib"]),
        .target(name: "Planner"),
        // JPEG/PNG decoding, the manifest's preprocessing, ImageFolder reading (model build, agent, edge).
        .target(name: "ImageIO", dependencies: ["CJPEG", "CPNG"]),
        .target(name: "FleetAPI"),
        // Rollout policy: waves, battery and energy caps, the wave decision, retry backoff. No SQL, no HTTP.
        .target(name: "Rollout", dependencies: ["FleetAPI"]),
        // ONNX import: the committed generated onnx.pb.swift, and the validated graph IR with shape inference.
        .target(name: "ONNX", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // Elastic packages and the recipes built on them (base-model training, the adaptation experiment); its
        // scaling report keeps its frontier with the planner's Pareto staircase (Planner is pure: the arrow points down).
        // ImageIO: a package's input pipeline (PackageInput), one implementation for the builder, the agent and its service.
        .target(name: "ElasticModel", dependencies: ["Learning", "Planner", "ImageIO", .product(name: "Crypto", package: "swift-crypto")]),
        // ONNX → the engine's Graph: initializers as parameters, batch norms put back into eval-mode exports (the
        // engine and ElasticModel never import ONNX; this module sits above both).
        .target(name: "ONNXImport", dependencies: ["ONNX", "Learning", "ElasticModel", "ImageIO"]),
        // ONNX export: a package's combination (variants, adapters, statistics), whole or split, as a standalone ONNX file.
        // It writes the protobuf itself (the ONNX module keeps its generated types internal); nothing below imports it.
        .target(name: "ONNXExport", dependencies: ["Learning", "ElasticModel"]),

        // Services. The coordinator in four layers, each a module so the compiler holds the arrows:
        // stores (all SQL) ← use cases (no SQL text, no HTTP) ← routes (HTTP only) ← the process (start, serve, stop).
        .target(name: "CoordinatorStore", dependencies: [
            "PostgresClient", .product(name: "Logging", package: "swift-log"), "FleetAPI", "Rollout", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "CoordinatorDomain", dependencies: [
            "CoordinatorStore", "PostgresClient", "Planner", "FleetAPI", "Rollout", "Learning", "ElasticModel", "ONNXExport",
        ]),
        // The migrations and the OpenAPI document compiled in (deploy/tools/bundle_resources.py writes it).
        .target(name: "BundledResources"),
        .target(name: "CoordinatorHTTP", dependencies: [
            "BundledResources", "CoordinatorDomain", "CoordinatorStore", "HTTPServer", "PostgresClient", "Planner", "FleetAPI", "Rollout", "Learning",
            "ElasticModel",
        ],
        // UI/: the web dashboard's files, compiled in through BundledResources (deploy/tools/bundle_resources.py).
        exclude: ["UI"]),
        .target(name: "Coordinator", dependencies: [
            .product(name: "Logging", package: "swift-log"), "BundledResources", "CommandSupport", "CoordinatorHTTP", "CoordinatorDomain", "CoordinatorStore", "HTTPServer", "PostgresClient", "Planner", "FleetAPI", "Rollout",
        ]),
        // The typed blocking HTTP client of the coordinator's API and the package cache (agent, edge, CLI).
        .target(name: "FleetClient", dependencies: ["FleetAPI", "CCurl", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Agent", dependencies: ["FleetAPI", "FleetClient", "Learning", "ElasticModel", "HTTPServer", "ImageIO", "ONNXExport"]),
        // The edge half of split inference; it reaches the coordinator through FleetClient.
        .target(name: "EdgeRuntime", dependencies: ["CommandSupport", "FleetClient", "HTTPServer", "FleetAPI", "Learning", "ElasticModel"]),

        // Executables.
        .executableTarget(name: "fleetadapt-coordinator", dependencies: [
            "CommandSupport",
            "Coordinator", "PostgresClient", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt-agent", dependencies: [
            "CommandSupport",
            "Agent", "FleetAPI", "FleetClient", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt-edge", dependencies: [
            "CommandSupport",
            "EdgeRuntime", "HTTPServer", "FleetClient", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fleetadapt", dependencies: [
            "CommandSupport",
            "Planner", "Coordinator", "Learning", "ElasticModel", "FleetAPI", "FleetClient", "ONNXExport", "ONNXImport", "ONNX", "ImageIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Tests. TestSupport holds the fixtures several test targets share (a raw-socket HTTP client, a child-process
        // runner, the built executables' paths, a small elastic package); it is a plain target (test targets cannot depend on each other), so
        // it imports no module @testable and builds in release too.
        .target(name: "TestSupport", dependencies: ["HTTPServer", "ElasticModel", "Learning"], path: "Tests/TestSupport"),
        .testTarget(name: "HTTPServerTests", dependencies: [
            "HTTPServer", "TestSupport", "CommandSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "TestSupport"]),
        .testTarget(name: "LearningTests", dependencies: ["Learning"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO"], exclude: ["Fixtures"]),
        .testTarget(name: "RolloutTests", dependencies: ["Rollout", "FleetAPI"]),
        .testTarget(name: "ONNXTests", dependencies: [
            "ONNX", "ONNXImport", "Learning", "ElasticModel", "ImageIO", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], exclude: ["Fixtures"]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "ONNX", "ONNXImport", "ElasticModel", "Learning", "TestSupport"]),
        .testTarget(name: "ElasticModelTests", dependencies: ["ElasticModel", "Learning", "TestSupport"]),
        .testTarget(name: "FleetAPITests", dependencies: ["FleetAPI"]),
        .testTarget(name: "FleetClientTests", dependencies: ["FleetClient", "FleetAPI", "HTTPServer", "TestSupport"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "FleetAPI", "FleetClient", "Learning", "ElasticModel", "HTTPServer", "ImageIO", "ONNXExport", "ONNX", "ONNXImport", "TestSupport"]),
        .testTarget(name: "CoordinatorTests", dependencies: [
            "Coordinator", "CoordinatorHTTP", "CoordinatorDomain", "CoordinatorStore", "BundledResources",
            "PostgresClient", "HTTPServer", "FleetAPI", "Rollout", "Learning", "ElasticModel", "EdgeRuntime",
            "ONNXExport", "TestSupport", "CommandSupport",
        ],
        // DashboardDriver/: the selenium script DashboardTests runs in a virtualenv; GeneratedClient/: the scenario
        // GeneratedClientTests runs with a generated Python client.
        exclude: ["DashboardDriver", "GeneratedClient"]),
    ],
    swiftLanguageModes: [.v6]
)
