import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import Hosts
import KVM
import QEMUEngine

/// An image set running as a transient libvirt domain. A thread of its own streams the
/// console file QEMU writes and notices the domain's end; the run's report is read from
/// the control port's file, as under the QEMU engine. The folder of files goes with the run.
final class LibvirtRun: RunningImageSet, @unchecked Sendable {
    let listening: [String] = []
    private let export: QEMUEngine.Export
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
        do throws(LaunchError) {
            export = try QEMUEngine().export(imageSet, options: options, to: folder)
            let xml = LibvirtDomain.xml(
                name: Orphans.domainName(imageSet.manifest.name, tag: tag), memoryBytes: export.memoryBytes,
                kernel: export.shim, serialFiles: [export.console, export.control],
                passthrough: export.passthroughArguments)
            do { domain = try TransientDomain(uri: uri, xml: xml) } catch {
                throw LaunchError.hostFailed(error.description)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
        do {
            _ = try MonitorThread(name: "virt-\(imageSet.manifest.name)", detached: true) { [self] in
                follow(console: console, as: export.machineName)
            }
        } catch {
            domain.destroy()
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
        let control = (try? Data(contentsOf: URL(fileURLWithPath: export.control))).map { [UInt8]($0) } ?? []
        try? FileManager.default.removeItem(atPath: folder)
        let end = export.end(control: control, timedOut: timedOut ? timeout : nil)
            .stopped(ifAsked: stopReason.withLock { $0 }, timedOut: timedOut)
        return RunReport(
            imageSet: export.imageSetName, end: end, startedAt: startedAt, firstHypercallAt: nil,
            endedAt: monotonicNanoseconds(),
            compartments: [CompartmentReport(name: export.machineName, consoleBytes: consoleBytes.withLock { $0 })])
    }

    func inspect() -> [CompartmentSnapshot] {
        export.snapshot(running: !ended.hasEnded, consoleBytes: consoleBytes.withLock { $0 })
    }
}
