import Foundation
import Glibc
import GuestMachine

/// One qemu-system-x86_64 process: started at once, its console (standard output) streamed
/// as it comes, killed on request.
final class QEMUProcess: @unchecked Sendable {
    struct Outcome: Sendable {
        /// What QEMU wrote on standard error.
        let errors: String
    }

    /// util-linux's setpriv, which starts QEMU with a parent-death signal: QEMU dies with
    /// flexosd, even when flexosd is killed (it was left running at 100% CPU, adopted by init).
    /// The signal follows the thread that started QEMU, so one thread of ours starts it and
    /// stays (reading its console) until it ends.
    static let setpriv = "/usr/bin/setpriv"

    private let pid = Locked<pid_t?>(nil)
    private let consoleCount = Locked<UInt64>(0)
    private let outcome = Locked<Outcome?>(nil)
    private let ended = RunEndSignal()

    /// Starts QEMU with `arguments`; its console goes to `console`. Returns once QEMU runs.
    init(arguments: [String], threadName: String, console: @escaping @Sendable ([UInt8]) -> Void)
        throws(LaunchError)
    {
        guard FileManager.default.isExecutableFile(atPath: QEMUProcess.setpriv) else {
            throw LaunchError.engineMissing(
                "\(QEMUProcess.setpriv) is missing: install Debian's util-linux, which ties QEMU's life to flexosd's")
        }
        let started = DispatchSemaphore(value: 0)
        let failure = Locked<String?>(nil)
        _ = try MonitorThread(name: threadName, detached: true) { [self] in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: QEMUProcess.setpriv)
            process.arguments = ["--pdeathsig", "KILL", "--", QEMUEngine.executable] + arguments
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            process.standardInput = FileHandle.nullDevice
            do { try process.run() } catch {
                failure.withLock { $0 = "cannot start \(QEMUEngine.executable): \(error.localizedDescription)" }
                started.signal()
                return
            }
            pid.withLock { $0 = process.processIdentifier }
            started.signal()
            serve(process, output: output, errors: errors, console: console)
        }
        started.wait()
        if let failure = failure.withLock({ $0 }) { throw LaunchError.engineMissing(failure) }
    }

    /// Streams the console until QEMU closes it, then records how it ended.
    private func serve(_ process: Process, output: Pipe, errors: Pipe, console: @Sendable ([UInt8]) -> Void) {
        nonisolated(unsafe) var errorText = Data()
        let errorReader = DispatchGroup()
        DispatchQueue.global().async(group: errorReader) {
            errorText = errors.fileHandleForReading.readDataToEndOfFile()
        }
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            consoleCount.withLock { $0 += UInt64(chunk.count) }
            console([UInt8](chunk))
        }
        process.waitUntilExit()
        errorReader.wait()
        outcome.withLock { $0 = Outcome(errors: String(decoding: errorText, as: UTF8.self)) }
        ended.signal()
    }

    /// QEMU's process id (setpriv execs it, so it keeps setpriv's).
    var processIdentifier: pid_t? { pid.withLock { $0 } }

    /// Whether QEMU still runs.
    var isRunning: Bool { outcome.withLock { $0 == nil } }

    /// Console bytes streamed so far.
    var consoleBytes: UInt64 { consoleCount.withLock { $0 } }

    /// Ends QEMU. SIGKILL: QEMU does not always act on SIGTERM while its guest spins.
    func kill() {
        guard isRunning, let pid = processIdentifier else { return }
        Glibc.kill(pid, SIGKILL)
    }

    /// Waits until QEMU has ended, killing it after `timeout` seconds; says whether it was
    /// the timeout that ended it.
    func wait(timeout: Double?) -> (outcome: Outcome, timedOut: Bool) {
        let timedOut = ended.wait(timeout: timeout) { kill() }
        return (outcome.withLock { $0 }!, timedOut)
    }
}
