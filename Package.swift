// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "FlexOS",
    products: [
        .executable(name: "flexosd", targets: ["flexosd"]),
        .executable(name: "flexosctl", targets: ["flexosctl"]),
        .executable(name: "flexos-port", targets: ["flexos-port"]),
        // For the fuzz drivers in Fuzz/ (a package of their own).
        .library(name: "FuzzTargets", targets: ["FuzzTargets"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The porting helper reads and rewrites Swift; only flexos-port links it.
        .package(url: "https://github.com/swiftlang/swift-syntax", from: "603.0.0")
    ],
    targets: [
        // Thin C modules: kernel headers and system libraries only.
        .target(name: "CKVM"),
        .target(name: "CFlexOSABI"),
        // The KVM engine's ring-0 code, assembled into the monitor. Guest/Ring0 holds every
        // piece of ring-0 code: this and the QEMU engine's shim, which the toolchain builds.
        .target(
            name: "CKVMEntry", dependencies: ["CFlexOSABI"], path: "Guest/Ring0", sources: ["kvm_entry.S"],
            publicHeadersPath: "include"),
        .target(name: "CConfinement", linkerSettings: [.linkedLibrary("seccomp")]),
        .target(name: "CURing", linkerSettings: [.linkedLibrary("uring")]),
        .systemLibrary(
            name: "CElf", pkgConfig: "libdw",
            providers: [.apt(["libelf-dev", "libdw-dev"])]),
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),

        // Host libraries, one concept each.
        .target(name: "KVM", dependencies: ["CKVM"]),
        // The control protocol's values (what a launch asks for, what runs report), and its client.
        .target(name: "ControlProtocol"),
        .target(
            name: "ControlClient",
            dependencies: [
                "ControlProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio")
            ]),
        .target(name: "GuestImage", dependencies: ["CElf", "CFlexOSABI"]),
        // An image set's guest machine as memory (layout, page tables, fault analysis, reports),
        // the engine interface and the device interface: what every engine and device shares,
        // without vCPU threads, seccomp or any device's code.
        .target(
            name: "GuestMachine",
            dependencies: ["KVM", "CKVM", "CKVMEntry", "GuestImage", "CFlexOSABI", "ControlProtocol"]),
        // Devices, each a module of its own behind GuestMachine's `Device`: the network device.
        .target(
            name: "NetworkDevice",
            dependencies: ["GuestMachine", "GuestImage", "KVM", "CURing", "CFlexOSABI", "ControlProtocol"]),
        // The KVM engine: VMs, vCPU threads, the run loop, hypercalls, confinement; devices come
        // from the providers flexosd hands it.
        .target(
            name: "Monitor",
            dependencies: ["GuestMachine", "KVM", "CKVM", "CConfinement", "GuestImage", "CFlexOSABI", "ControlProtocol"]
        ),
        .target(
            name: "QEMUEngine",
            dependencies: ["GuestMachine", "GuestImage", "KVM", "CKVM", "CFlexOSABI", "ControlProtocol"]),
        .target(name: "Conformation", dependencies: ["GuestImage", "Yams"]),
        .target(name: "Hosts", dependencies: ["CLibvirt", "KVM", "GuestImage"]),
        .target(
            name: "LibvirtEngine",
            dependencies: ["Hosts", "QEMUEngine", "GuestMachine", "GuestImage", "KVM", "ControlProtocol"]),
        .target(name: "Toolchain", dependencies: ["Conformation", "GuestImage", "CFlexOSABI", "Yams"]),
        .target(name: "Exploration", dependencies: ["Conformation", "GuestImage", "Toolchain", "Yams"]),
        .target(
            name: "Porting",
            dependencies: [
                "Toolchain", .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftParser", package: "swift-syntax")
            ]),
        .target(
            name: "ControlAPI",
            dependencies: [
                "Monitor", "GuestMachine", "ControlProtocol", "KVM", "CKVM", "GuestImage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
            ]),

        // Hostile-input entry points for libFuzzer (Fuzz/) and the corpus replay in the tests.
        .target(
            name: "FuzzTargets",
            dependencies: ["GuestImage", "KVM", "CKVM", "Monitor", "GuestMachine", "Conformation", "ControlAPI"]),

        // The two executables, thin.
        .executableTarget(
            name: "flexosd",
            dependencies: [
                "Monitor", "ControlAPI", "ControlProtocol", "ControlClient", "NetworkDevice", "QEMUEngine",
                "LibvirtEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log")
            ]),
        .executableTarget(
            name: "flexosctl",
            dependencies: [
                "Toolchain", "Exploration", "ControlProtocol", "ControlClient", "KVM", "Hosts", "GuestMachine",
                "QEMUEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // HTTPMethod in ControlClient's interface.
                .product(name: "NIOHTTP1", package: "swift-nio")
            ]),

        // The porting helper, its own executable so that flexosctl's start-up stays small.
        .executableTarget(
            name: "flexos-port",
            dependencies: ["Porting", "Toolchain", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Benchmarks: speed targets live here, never in timed tests.
        .executableTarget(
            name: "flexos-bench",
            dependencies: ["GuestImage", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/Sources/flexos-bench"),

        .testTarget(
            name: "FlexOSTests",
            dependencies: [
                "KVM", "GuestImage", "Monitor", "GuestMachine", "NetworkDevice", "QEMUEngine", "Conformation",
                "Toolchain",
                "ControlProtocol", "ControlClient",
                "Exploration", "Porting", "ControlAPI", "FuzzTargets", "Hosts", "LibvirtEngine",
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Yams", package: "Yams")
            ])
    ],
    swiftLanguageModes: [.v6]
)
