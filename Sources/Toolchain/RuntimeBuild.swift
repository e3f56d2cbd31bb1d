import Foundation

/// Builds the guest runtime (module FlexOS and its C support), once per content:
/// the result is cached in a folder named by a fingerprint of its sources and flags.
struct RuntimeBuild {
    struct Output: Sendable {
        /// Holds FlexOS.swiftmodule, for libraries to import.
        let moduleFolder: String
        let object: String
        let support: String
        /// The global symbols runtime.o defines, one per line.
        let symbols: String
    }

    /// The runtime is trusted code: optimised, no stack protector (it implements it), and
    /// no loop-idiom recognition, which would turn memset's loop into a call to memset.
    static let flags = ["-O", "-Xfrontend", "-disable-stack-protector", "-Xllvm", "-disable-loop-idiom-all"]
    static let supportFlags = [
        "-target", "x86_64-unknown-none-elf", "-ffreestanding", "-fno-stack-protector", "-fno-builtin",
        "-fno-asynchronous-unwind-tables", "-O2", "-g"
    ]

    /// Bumped whenever a cache entry gains or changes a file.
    static let cacheFormat = "runtime-cache-2"

    let builder: ImageBuilder

    func build(report: (String) -> Void) throws(ToolchainError) -> Output {
        let tree = builder.tree
        var fingerprint = Fingerprint()
        fingerprint.add(
            files: tree.runtimeSources + [
                tree.runtimeSupportSource, tree.runtimeInclude + "/flexos_guest.h", tree.abiInclude + "/flexos_abi.h"
            ])
        for part in [RuntimeBuild.cacheFormat, builder.tools.swiftc] + ImageBuilder.swiftFlags + RuntimeBuild.flags
            + RuntimeBuild.supportFlags
        { fingerprint.add(part) }
        let folder = builder.cacheFolder + "/" + fingerprint.hex
        let output = Output(
            moduleFolder: folder, object: folder + "/runtime.o", support: folder + "/support.o",
            symbols: folder + "/runtime.symbols")
        if [output.object, output.support, output.symbols].allSatisfy(FileManager.default.fileExists) {
            report("runtime: up to date (\(folder))")
            return output
        }
        report("runtime: compiling \(tree.runtimeSources.count) Swift files and the C support")
        // Build in a private folder and rename it into place, so concurrent builds never see half a cache entry.
        let staging = folder + ".staging-\(getpid())"
        try makeFolder(staging)
        try CommandRunner().run(
            [builder.tools.swiftc] + ImageBuilder.swiftFlags + builder.debugPrefixMap + RuntimeBuild.flags + [
                "-module-name", "FlexOS", "-emit-module", "-emit-module-path", staging + "/FlexOS.swiftmodule",
                "-I", tree.runtimeInclude, "-Xcc", "-I" + tree.abiInclude, "-c", "-o", staging + "/runtime.o"
            ] + tree.runtimeSources,
            step: "compiling the guest runtime")
        try CommandRunner().run(
            [builder.tools.clang] + RuntimeBuild.supportFlags + [
                "-fdebug-prefix-map=" + tree.root + "/=", "-I", tree.abiInclude, "-c", tree.runtimeSupportSource, "-o",
                staging + "/support.o"
            ],
            step: "compiling the runtime's C support")
        let symbols = try CommandRunner().run(
            [builder.tools.nm, "--defined-only", "--extern-only", "--format=just-symbols", staging + "/runtime.o"],
            step: "listing the runtime's symbols")
        try write(symbols, to: staging + "/runtime.symbols")
        if rename(staging, folder) != 0 {
            try? FileManager.default.removeItem(atPath: staging)
            guard FileManager.default.fileExists(atPath: output.object) else {
                throw ToolchainError.io(
                    path: folder, "cannot move the runtime build into place: \(String(cString: strerror(errno)))")
            }
        }
        return output
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of build inputs (Swift's Hasher is seeded per process).
struct Fingerprint {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        value = (value ^ 0xff) &* 0x100_0000_01b3
    }

    mutating func add(_ text: String) { add(text.utf8) }

    /// Adds each file's path and contents.
    mutating func add(files paths: [String]) {
        for path in paths {
            add(path)
            add(FileManager.default.contents(atPath: path) ?? Data())
        }
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
