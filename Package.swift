// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "FlexOS",
    products: [
        .executable(name: "flexosd", targets: ["flexosd"]),
        .executable(name: "flexosctl", targets: ["flexosctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // Thin C modules: kernel headers and system libraries only.
        .target(name: "CKVM"),
        .target(name: "CFlexOSABI"),
        .systemLibrary(
            name: "CElf", pkgConfig: "libdw",
            providers: [.apt(["libelf-dev", "libdw-dev"])]),

        // Host libraries, one concept each.
        .target(name: "KVM", dependencies: ["CKVM"]),
        .target(name: "GuestImage", dependencies: ["CElf", "CFlexOSABI"]),
        .target(name: "Monitor", dependencies: ["KVM", "CKVM", "GuestImage", "CFlexOSABI"]),
        .target(name: "Conformation", dependencies: ["GuestImage", "Yams"]),
        .target(name: "Toolchain", dependencies: ["Conformation", "GuestImage", "CFlexOSABI", "Yams"]),

        // The two executables, thin.
        .executableTarget(
            name: "flexosd",
            dependencies: ["Monitor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "flexosctl",
            dependencies: ["Toolchain", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Benchmarks: speed targets live here, never in timed tests.
        .executableTarget(
            name: "flexos-bench",
            dependencies: ["GuestImage", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/Sources/flexos-bench"),

        .testTarget(name: "FlexOSTests", dependencies: ["KVM", "GuestImage", "Monitor", "Conformation", "Toolchain"]),
    ],
    swiftLanguageModes: [.v5]
)
