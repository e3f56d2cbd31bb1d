import Foundation

/// Builds the QEMU engine's ring-0 shim (Guest/Ring0: shim_entry.S, shim.c, shim.ld), once per content, cached beside the
/// runtime. Single-VM image sets (fcalls, intel-mpk) carry a copy, so that
/// `flexosd launch --engine qemu` finds it in the image set's folder.
struct ShimBuild {
    static let fileName = "qemu-shim.elf"
    static let flags = [
        "-target", "x86_64-unknown-none-elf", "-ffreestanding", "-fno-pic", "-fno-stack-protector", "-mno-red-zone",
        "-mgeneral-regs-only", "-fno-asynchronous-unwind-tables", "-O2", "-Wall", "-Werror"
    ]

    let builder: ImageBuilder

    /// The path of the built shim.
    func build(report: (String) -> Void) throws(ToolchainError) -> String {
        let tree = builder.tree
        let folder = tree.root + "/Guest/Ring0"
        let sources = ["shim_entry.S", "shim.c", "shim.ld"].map { folder + "/" + $0 }
        var fingerprint = Fingerprint()
        fingerprint.add(files: sources + [tree.abiInclude + "/flexos_abi.h"])
        for part in ["shim-cache-1", builder.tools.clang] + ShimBuild.flags { fingerprint.add(part) }
        let output = builder.cacheFolder + "/shim-" + fingerprint.hex + ".elf"
        if FileManager.default.fileExists(atPath: output) { return output }
        report("qemu shim: compiling Guest/Ring0/shim.c")
        let staging = output + ".staging-\(getpid())"
        try makeFolder(staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try CommandRunner().run(
            [builder.tools.clang] + ShimBuild.flags + [
                "-I", tree.abiInclude, "-c", sources[1], "-o", staging + "/shim.o"
            ],
            step: "compiling the QEMU shim")
        try CommandRunner().run(
            [builder.tools.clang, "-target", "x86_64-unknown-none-elf", "-c", sources[0], "-o", staging + "/entry.o"],
            step: "assembling the QEMU shim's entry")
        try CommandRunner().run(
            [
                builder.tools.linker, "-static", "-nostdlib", "-T", sources[2], "-o", staging + "/shim.elf",
                staging + "/entry.o", staging + "/shim.o"
            ], step: "linking the QEMU shim")
        if rename(staging + "/shim.elf", output) != 0 && !FileManager.default.fileExists(atPath: output) {
            throw ToolchainError.io(
                path: output, "cannot move the shim into place: \(String(cString: strerror(errno)))")
        }
        return output
    }
}
