import Monitor
import Foundation
import Glibc

/// One qemu-system-x86_64 process: its console (standard output) streamed as it comes,
/// stopped after a timeout, its control-port file read at the end.
struct QEMUProcess {
    let arguments: [String]
    let control: String

    struct Outcome {
        let control: [UInt8]
        let timedOut: Bool
        let errors: String
        let consoleBytes: UInt64
    }

    /// util-linux's setpriv, which starts QEMU with a parent-death signal: QEMU dies with
    /// flexosd, even when flexosd is killed (it was left running at 100% CPU, adopted by init).
    /// The signal follows the thread that starts QEMU, which waits here until QEMU ends.
    static let setpriv = "/usr/bin/setpriv"

    func run(timeout: Double?, console: @escaping @Sendable ([UInt8]) -> Void) throws(LaunchError) -> Outcome {
        guard FileManager.default.isExecutableFile(atPath: QEMUProcess.setpriv) else {
            throw LaunchError.engineMissing("\(QEMUProcess.setpriv) is missing: install Debian's util-linux, which ties QEMU's life to flexosd's")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: QEMUProcess.setpriv)
        process.arguments = ["--pdeathsig", "KILL", "--", QEMUEngine.executable] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw LaunchError.engineMissing("cannot start \(QEMUEngine.executable): \(error.localizedDescription)") }
        let streamed = StreamedCount()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { return }
                streamed.add(chunk.count)
                console([UInt8](chunk))
            }
        }
        nonisolated(unsafe) var errorText = Data()
        DispatchQueue.global().async(group: group) { errorText = errors.fileHandleForReading.readDataToEndOfFile() }
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var timedOut = false
        while process.isRunning {
            if let deadline, Date() >= deadline {
                // SIGKILL: QEMU does not always act on SIGTERM while its guest spins.
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(5_000)
        }
        process.waitUntilExit()
        group.wait()
        let controlBytes = (try? Data(contentsOf: URL(fileURLWithPath: control))).map { [UInt8]($0) } ?? []
        return Outcome(control: controlBytes, timedOut: timedOut, errors: String(decoding: errorText, as: UTF8.self), consoleBytes: streamed.value)
    }
}

/// Console bytes counted by the reader thread.
final class StreamedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count: UInt64 = 0
    func add(_ bytes: Int) { lock.lock(); count += UInt64(bytes); lock.unlock() }
    var value: UInt64 { lock.lock(); defer { lock.unlock() }; return count }
}
