import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM

/// An image set running under QEMU: one VM in one qemu-system-x86_64 process, with its
/// folder of files (prepared memory, control port) that goes when the run is waited for.
final class QEMURun: RunningImageSet, @unchecked Sendable {
    let listening: [String] = []
    private let prepared: PreparedMemory
    private let folder: String
    private let process: QEMUProcess
    private let startedAt: UInt64
    /// Why it was stopped from outside, once it was.
    private let stopReason = Locked<String?>(nil)

    init(imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError) {
        startedAt = monotonicNanoseconds()
        prepared = try QEMUEngine.prepare(imageSet, options: options)
        RunFolders.removeThoseOfDeadProcesses(prefix: QEMUEngine.folderPrefix)
        folder = NSTemporaryDirectory() + "\(QEMUEngine.folderPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let name = prepared.layout.compartments[0].name
        do {
            let files = try prepared.write(to: folder)
            let arguments = QEMUEngine.arguments(
                files, memory: prepared.qemuMemory, shim: QEMUEngine.shim(of: imageSet))
            process = try QEMUProcess(
                arguments: arguments, control: files.control, threadName: "qemu-\(imageSet.manifest.name)"
            ) { bytes in
                console.write(bytes, compartment: name, index: 0)
            }
        } catch {
            QEMURun.remove(folder)
            throw error
        }
    }

    func stop(reason: String) {
        stopReason.withLock { $0 = $0 ?? reason }
        process.kill()
    }

    func wait(timeout: Double?) -> RunReport {
        let (outcome, timedOut) = process.wait(timeout: timeout)
        QEMURun.remove(folder)
        let end = prepared.end(
            from: ShimReport(outcome.control), timedOut: timedOut ? timeout : nil, errors: outcome.errors
        ).stopped(ifAsked: stopReason.withLock { $0 }, timedOut: timedOut)
        return RunReport(
            imageSet: prepared.imageSet.manifest.name, end: end, startedAt: startedAt, firstHypercallAt: nil,
            endedAt: monotonicNanoseconds(),
            compartments: [
                CompartmentReport(name: prepared.layout.compartments[0].name, consoleBytes: process.consoleBytes)
            ])
    }

    func inspect() -> [CompartmentSnapshot] {
        [prepared.snapshot(running: process.isRunning, consoleBytes: process.consoleBytes)]
    }

    /// FLEXOS_QEMU_KEEP=1 keeps the files (memory, handoff, control port) for debugging the shim.
    private static func remove(_ folder: String) {
        if getenv("FLEXOS_QEMU_KEEP") == nil { try? FileManager.default.removeItem(atPath: folder) }
    }
}
