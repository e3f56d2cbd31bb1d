import Foundation

/// Compiles a library with Swift's dynamic exclusivity checks (hardening
/// `exclusivity-checks`).
///
/// Swift 6.3's Embedded standard library gives every module its own empty `weak_odr`
/// swift_beginAccess and swift_endAccess, which LLVM inlines away: with
/// `-enforce-exclusivity=checked` alone, an optimised object keeps no check. So the build
/// stops after IRGen, turns those two empty definitions into declarations, and has the
/// Swift frontend optimise and compile the IR. The calls stay, and the linker binds them
/// to the runtime's checker (Guest/Runtime: Exclusivity.swift, through support.c).
struct ExclusivityBuild {
    static let checked = "-enforce-exclusivity=checked"
    static let accessFunctions = ["swift_beginAccess": "ptr, ptr, i64, ptr", "swift_endAccess": "ptr"]

    let tools: HostTools

    /// `arguments` is the swiftc command line without its output.
    func compile(arguments: [String], sources: [String], output: String, step: String) throws(ToolchainError) {
        let ir = output + ".ll"
        try CommandRunner().run(
            arguments + ["-emit-irgen", "-o", ir] + sources, step: step + " (to LLVM IR, exclusivity-checks)")
        let text: String
        do { text = try String(contentsOfFile: ir, encoding: .utf8) } catch {
            throw ToolchainError.io(path: ir, "cannot read: \(error.localizedDescription)")
        }
        try write(try ExclusivityBuild.keepAccessCalls(text, path: ir), to: ir)
        try CommandRunner().run(
            [tools.swiftFrontend, "-c", ir, "-target", "x86_64-unknown-none-elf", "-O", "-o", output],
            step: step + " (from LLVM IR)")
        try? FileManager.default.removeItem(atPath: ir)
    }

    /// Replaces the module's empty definitions of the access functions with declarations.
    static func keepAccessCalls(_ ir: String, path: String) throws(ToolchainError) -> String {
        var lines = ir.components(separatedBy: "\n")
        for (name, parameters) in accessFunctions {
            guard let start = lines.firstIndex(where: { $0.hasPrefix("define ") && $0.contains(" @\(name)(") }) else {
                continue
            }
            guard start + 3 < lines.count, lines[start + 1] == "entry:", lines[start + 2].hasPrefix("  ret void"),
                lines[start + 3] == "}"
            else {
                throw ToolchainError.io(
                    path: path,
                    "\(name) is not the empty function this Swift toolchain used to emit; exclusivity-checks needs updating for it"
                )
            }
            lines.replaceSubrange(start...(start + 3), with: ["declare void @\(name)(\(parameters))"])
        }
        return lines.joined(separator: "\n")
    }
}
