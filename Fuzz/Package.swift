// swift-tools-version:6.2
// libFuzzer drivers for FlexOS's hostile-input entry points (Sources/FuzzTargets).
// A package of its own: it is built with -sanitize=fuzzer by scripts/fuzz, never by the
// project's ordinary build. See Fuzz/README.md.
import PackageDescription

let package = Package(
    name: "FlexOSFuzz",
    dependencies: [.package(name: "FlexOS", path: "..")],
    targets: [
        // Declares libFuzzer's LLVMFuzzerRunDriver (SwiftPM gives the executable a main of
        // its own, so libFuzzer's is not the one that runs).
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "flexos-fuzz", dependencies: ["CFuzzDriver", .product(name: "FuzzTargets", package: "FlexOS")])
    ],
    swiftLanguageModes: [.v5]
)
