import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import Hosts
import KVM
import QEMUEngine

/// An image set running as a transient libvirt domain whose hypercalls flexosd serves as
/// under the QEMU engine (ShimSession: the domain's RAM is a memfd flexosd maps, its control
/// port a socket flexosd listens on). A thread of its own notices the domain's end (and copies
/// whatever QEMU writes on COM1). The folder of files goes with the run.
final class LibvirtRun: RunningImageSet, @unchecked Sendable {
    let listening: [String] = []
    private let export: QEMUEngine.Export
    /// flexosd's side of the domain: it serves the shim's hypercalls on the domain's RAM.
    private let session: ShimSession
    private let folder: String
    private let domain: TransientDomain
    private let startedAt: UInt64
    private let stopReason = Locked<String?>(nil)
    private let consoleBytes = Locked<UInt64>(0)
    private let ended = RunEndSignal()

    init(imageSet: ImageSet, options: LaunchOptions, uri: String, console: any ConsoleSink) throws(LaunchError) {
        startedAt = monotonicNanoseconds()
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        folder = NSTemporaryDirectory() + Orphans.folderPrefix + "\(getpid())-\(tag)"
        RunFolders.removeThoseOfDeadProcesses(prefix: Orphans.folderPrefix)
        Orphans.destroyDomainsOfDeadRuns(on: uri)
        var exported: QEMUEngine.Export? = nil
        var started: TransientDomain? = nil
        do throws(LaunchError) {
            let export = try QEMUEngine().export(imageSet, options: options, to: folder, servedByFlexosd: true)
            exported = export
            let name = Orphans.domainName(imageSet.manifest.name, tag: tag)
            let xml = LibvirtDomain.xml(
                name: name, memoryBytes: export.memoryBytes, kernel: export.shim,
                serials: [.file(export.console), .socket(export.control)], sharedMemory: true,
                passthrough: export.passthroughArguments)
            do { started = try TransientDomain(uri: uri, xml: xml) } catch {
                throw LaunchError.hostFailed(error.description)
            }
            let (pid, ram) = try DomainRAM.open(domain: name, bytes: export.memoryBytes)
            try export.session!.serve(qemu: pid, ram: ram, console: console)
        } catch {
            started?.destroy()
            _ = exported?.session?.finish(timedOut: nil, errors: "", consoleBytes: 0)
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
        export = exported!
        session = exported!.session!
        domain = started!
        do {
            _ = try MonitorThread(name: "virt-\(imageSet.manifest.name)", detached: true) { [self] in
                follow(console: console, as: export.machineName)
            }
        } catch {
            domain.destroy()
            _ = session.finish(timedOut: nil, errors: "", consoleBytes: 0)
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
    }

    /// Copies what QEMU appends to the console file until the domain has ended.
    private func follow(console: any ConsoleSink, as compartment: String) {
        guard let file = FileHandle(forReadingAtPath: export.console) else { return ended.signal() }
        defer { try? file.close() }
        while true {
            let active = domain.isActive
            let chunk = file.availableData
            if !chunk.isEmpty {
                consoleBytes.withLock { $0 += UInt64(chunk.count) }
                console.write([UInt8](chunk), compartment: compartment, index: 0)
                continue
            }
            if !active { break }
            usleep(20_000)
        }
        ended.signal()
    }

    func stop(reason: String) {
        stopReason.withLock { $0 = $0 ?? reason }
        domain.destroy()
    }

    func wait(timeout: Double?) -> RunReport {
        let timedOut = ended.wait(timeout: timeout) { domain.destroy() }
        let (end, report) = session.finish(
            timedOut: timedOut ? timeout : nil, errors: "", consoleBytes: consoleBytes.withLock { $0 })
        try? FileManager.default.removeItem(atPath: folder)
        return RunReport(
            imageSet: export.imageSetName, end: end.stopped(ifAsked: stopReason.withLock { $0 }, timedOut: timedOut),
            startedAt: startedAt, firstHypercallAt: nil, endedAt: monotonicNanoseconds(), compartments: [report])
    }

    func inspect() -> [CompartmentSnapshot] {
        [session.snapshot(running: !ended.hasEnded, consoleBytes: consoleBytes.withLock { $0 })]
    }
}
