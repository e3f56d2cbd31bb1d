import Foundation

/// Runs the build's external commands and reports their failures with their output.
struct CommandRunner: Sendable {
    /// Runs `arguments` (the first is the program) in `folder` and returns its standard
    /// output. `step` names the build step in the error, e.g. "compiling flexosexample".
    @discardableResult
    func run(_ arguments: [String], step: String, in folder: String? = nil) throws(ToolchainError) -> String {
        let process = Process()
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw ToolchainError.commandFailed(
                step: step, command: arguments.joined(separator: " "), output: "\(error)")
        }
        // Drain both pipes before waiting, so a chatty tool cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errorData = Data()
        DispatchQueue.global().async(group: group) { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let standardOutput = String(decoding: outputData, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errorData, as: UTF8.self) + standardOutput
            throw ToolchainError.commandFailed(
                step: step, command: arguments.joined(separator: " "),
                output: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return standardOutput
    }
}
