import Foundation

/// Runs commands on a KVM with protection keys nested inside QEMU's emulation
/// (scripts/nested-kvm): Debian's kernel and kvm-amd under `qemu-system-x86_64 -accel tcg
/// -cpu max`, which offers PKU to its own guests. One boot runs every command given, in
/// turn; files are at the same paths inside as here. A boot that cannot happen (no QEMU,
/// no kernel package, a hang) is an error that says so: nothing is skipped.
enum NestedKVM {
    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    /// Runs each of `commands` in one nested boot with `executables` (and their shared
    /// libraries) and `files` inside; returns what each printed and its exit status.
    static func run(_ commands: [String], executables: [String], files: [String], timeout: Int = 240) throws -> [Result]
    {
        let output = NSTemporaryDirectory() + "flexos-nested-results-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let arguments =
            ["--timeout", "\(timeout)", "--output", output]
            + executables.flatMap { ["--executable", $0] } + files.flatMap { ["--include", $0] } + ["--"] + commands
        let script = try Executables.runProgram(repositoryRoot + "/scripts/nested-kvm", arguments)
        guard script.status == 0 else {
            throw TestFailure("scripts/nested-kvm failed (status \(script.status)): \(script.errors)")
        }
        return try commands.indices.map { index in
            let base = output + "/\(index + 1)"
            let read = { (suffix: String) in try String(contentsOfFile: base + suffix, encoding: .utf8) }
            guard let status = Int32(try read(".status").trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw TestFailure("scripts/nested-kvm gave no exit status for command \(index + 1)")
            }
            return Result(status: status, output: try read(".out"), errors: try read(".err"))
        }
    }
}
