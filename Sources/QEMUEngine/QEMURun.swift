import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM

/// An image set running under QEMU: one VM in one qemu-system-x86_64 process whose RAM
/// flexosd shares, its hypercalls served by flexosd (HypercallServer), and its folder of
/// files (prepared memory, control socket) that goes when the run is waited for.
final class QEMURun: RunningImageSet, @unchecked Sendable {
    let listening: [String] = []
    private let prepared: PreparedMemory
    private let folder: String
    private let ram: SharedRAM
    private let server: HypercallServer
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
        var server: HypercallServer? = nil
        do {
            let files = try prepared.write(to: folder, servedByFlexosd: true)
            ram = try SharedRAM(
                size: prepared.qemuMemory, mapped: prepared.memory.addressSpace.mapped, name: imageSet.manifest.name)
            let (prepared, space) = (prepared, ram.space)
            server = try HypercallServer(
                socketPath: folder + "/control.sock", space: ram.space, consoleRing: ram.consoleRing, name: name,
                console: console
            ) { why, call in
                prepared.refusedHypercall(why, rip: call.rip, rsp: call.rsp, rbp: call.rbp, space: space)
            }
            let arguments = QEMUEngine.arguments(
                files, ram: ram, controlSocket: server!.socketPath, shim: QEMUEngine.shim(of: imageSet))
            process = try QEMUProcess(arguments: arguments, threadName: "qemu-\(imageSet.manifest.name)") { bytes in
                console.write(bytes, compartment: name, index: 0)
            }
        } catch {
            _ = server?.finish()
            QEMURun.remove(folder)
            throw error
        }
        self.server = server!
    }

    func stop(reason: String) {
        stopReason.withLock { $0 = $0 ?? reason }
        process.kill()
    }

    func wait(timeout: Double?) -> RunReport {
        let (outcome, timedOut) = process.wait(timeout: timeout)
        let served = server.finish()
        QEMURun.remove(folder)
        // A hypercall that ended the run (exit, panic, a broken ABI) says how; else the shim's report does.
        let end =
            ((timedOut ? nil : served.end)
            ?? prepared.end(
                from: ShimReport(served.report), timedOut: timedOut ? timeout : nil, errors: outcome.errors))
            .stopped(ifAsked: stopReason.withLock { $0 }, timedOut: timedOut)
        return RunReport(
            imageSet: prepared.imageSet.manifest.name, end: end, startedAt: startedAt, firstHypercallAt: nil,
            endedAt: monotonicNanoseconds(), compartments: [report(served)])
    }

    func inspect() -> [CompartmentSnapshot] {
        let served = server.state.withLock { $0 }
        return [
            prepared.snapshot(
                running: process.isRunning, report: report(served), live: (ram.space, served.lastPKRU))
        ]
    }

    private func report(_ served: HypercallServer.State) -> CompartmentReport {
        CompartmentReport(
            name: prepared.layout.compartments[0].name, hypercalls: served.hypercalls,
            consoleBytes: process.consoleBytes + served.consoleBytes)
    }

    /// FLEXOS_QEMU_KEEP=1 keeps the files (memory, handoff, control socket) for debugging the shim.
    private static func remove(_ folder: String) {
        if getenv("FLEXOS_QEMU_KEEP") == nil { try? FileManager.default.removeItem(atPath: folder) }
    }
}
