import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM

/// An image set running under QEMU: one VM in one qemu-system-x86_64 process whose RAM
/// flexosd shares and whose hypercalls it serves (ShimSession), with its folder of files
/// (prepared memory, control socket) that goes when the run is waited for.
final class QEMURun: RunningImageSet, @unchecked Sendable {
    let listening: [String] = []
    private let session: ShimSession
    private let folder: String
    private let process: QEMUProcess
    private let startedAt: UInt64
    /// Why it was stopped from outside, once it was.
    private let stopReason = Locked<String?>(nil)

    init(imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError) {
        startedAt = monotonicNanoseconds()
        let prepared = try QEMUEngine.prepare(imageSet, options: options)
        RunFolders.removeThoseOfDeadProcesses(prefix: QEMUEngine.folderPrefix)
        folder = NSTemporaryDirectory() + "\(QEMUEngine.folderPrefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let name = prepared.layout.compartments[0].name
        var session: ShimSession? = nil
        do {
            session = try ShimSession(prepared: prepared, folder: folder)
            let ram = try SharedRAM(
                size: prepared.qemuMemory, mapped: prepared.memory.addressSpace.mapped, name: imageSet.manifest.name)
            try session!.serve(ram: ram, console: console)
            let arguments = QEMUEngine.arguments(session!.files, ram: ram, shim: QEMUEngine.shim(of: imageSet))
            process = try QEMUProcess(arguments: arguments, threadName: "qemu-\(imageSet.manifest.name)") { bytes in
                console.write(bytes, compartment: name, index: 0)
            }
        } catch {
            _ = session?.finish(timedOut: nil, errors: "", consoleBytes: 0)
            QEMURun.remove(folder)
            throw error
        }
        self.session = session!
        if let pid = process.processIdentifier { session!.started(pid: pid) }
    }

    func stop(reason: String) {
        stopReason.withLock { $0 = $0 ?? reason }
        process.kill()
    }

    func wait(timeout: Double?) -> RunReport {
        let (outcome, timedOut) = process.wait(timeout: timeout)
        let (end, report) = session.finish(
            timedOut: timedOut ? timeout : nil, errors: outcome.errors, consoleBytes: process.consoleBytes)
        QEMURun.remove(folder)
        return RunReport(
            imageSet: session.prepared.imageSet.manifest.name,
            end: end.stopped(ifAsked: stopReason.withLock { $0 }, timedOut: timedOut), startedAt: startedAt,
            firstHypercallAt: nil, endedAt: monotonicNanoseconds(), compartments: [report])
    }

    func inspect() -> [CompartmentSnapshot] {
        [session.snapshot(running: process.isRunning, consoleBytes: process.consoleBytes)]
    }

    /// FLEXOS_QEMU_KEEP=1 keeps the files (memory, handoff, control socket) for debugging the shim.
    private static func remove(_ folder: String) {
        if getenv("FLEXOS_QEMU_KEEP") == nil { try? FileManager.default.removeItem(atPath: folder) }
    }
}
