import ControlProtocol
import FoundationEssentials
import Glibc
import GuestImage
import GuestMachine
import KVM
import Monitor
import Synchronization

/// Why the daemon refused a request about image sets.
public enum RegistryError: Error, CustomStringConvertible {
    case unknownImageSet(String)
    case nameTaken(String)
    case invalidName(String)
    case stillRunning(String)
    case invalidTimeout(Double)
    case notEnoughMemory(asked: UInt64, promised: UInt64, limit: UInt64, source: String)
    case noEngine(EngineChoice.Failure)
    case connectNeedsLibvirt(EngineKind)
    case launch(LaunchError)

    public var description: String {
        switch self {
        case .unknownImageSet(let name): return "there is no image set named \(name) (see `flexosctl list`)"
        case .nameTaken(let name):
            return "an image set named \(name) already exists; choose another --name or remove it"
        case .invalidName(let name):
            return
                "\(name.prefix(80).debugDescription) cannot name an image set: use up to 64 letters, digits, '-', '_' and '.', not starting with '.'"
        case .invalidTimeout(let seconds):
            return "timeout \(seconds) s is not a duration a run may have: give seconds, more than 0 and at most a year"
        case .stillRunning(let name): return "image set \(name) is still running; stop it first"
        case .notEnoughMemory(let asked, let promised, let limit, let source):
            return
                "the image set asks for \(asked >> 20) MiB of guest memory, and the running ones were promised \(promised >> 20) MiB of the \(limit >> 20) MiB that \(source) allows: stop one, or launch with less --memory"
        case .noEngine(let failure): return failure.description
        case .connectNeedsLibvirt(let kind):
            return
                "--connect names a libvirt host, where engine libvirt runs image sets, not \(kind.rawValue): leave --engine out"
        case .launch(let error): return error.description
        }
    }
}

/// The daemon's image sets: it launches them, keeps their console output, answers
/// inspections, stops them, and keeps what they reported when they ended.
///
/// Each launched set gets a supervisor thread that waits for its end; the VMs are then
/// released at once, and the final report, inspection and log stay for `list`, `inspect`
/// and `logs`. The HTTP API calls these methods and knows nothing of KVM.
public final class ImageSetRegistry: @unchecked Sendable {
    private final class Entry: @unchecked Sendable {
        let name: String
        let path: String
        let manifest: ImageManifest
        let choice: EngineChoice
        let host: String?
        let log = ConsoleLog()
        let launchedAt = Date()
        let launchStartedAt = monotonicNanoseconds()
        let run = Locked<(any RunningImageSet)?>(nil)
        /// A stop that came while it was still launching (taken under `run`'s lock).
        let pendingStop = Locked<String?>(nil)
        /// Guest memory its launch promised (MemoryAdmission), until it ends.
        var promised: UInt64 = 0
        let listening = Locked<[String]?>(nil)
        let outcome = Locked<(report: RunReport, snapshot: [CompartmentSnapshot])?>(nil)

        init(name: String, path: String, manifest: ImageManifest, choice: EngineChoice, host: String?) {
            self.name = name
            self.path = path
            self.manifest = manifest
            self.choice = choice
            self.host = host
        }
    }

    private let engines: [any ImageSetEngine]
    private let entries = Locked<[String: Entry]>([:])
    private let order = Locked<[String]>([])
    /// Called when an image set ends (for metrics and logs).
    private let onEnd: @Sendable (ImageSetStatus, RunReport) -> Void

    /// A registry that launches on `engines`; with no engine asked for, on the first that
    /// can run the set here.
    public init(
        engines: [any ImageSetEngine], onEnd: @escaping @Sendable (ImageSetStatus, RunReport) -> Void = { _, _ in }
    ) {
        self.engines = engines
        self.onEnd = onEnd
    }

    /// Opens `path` and boots it under `name` (by default the image set's own name) on
    /// `engine` (by default the first that can run it here).
    ///
    /// The files are opened with `caller`'s file-system identity, so an API client can
    /// launch only what it could read itself. This blocks on file I/O and KVM set-up:
    /// call it off any event loop.
    public func launch(
        path: String, name requested: String?, engine: EngineKind? = nil, options: LaunchOptions,
        caller: FileAccessIdentity? = nil
    ) throws(RegistryError) -> ImageSetStatus {
        if let requested, !ImageManifest.isValidName(requested) { throw RegistryError.invalidName(requested) }
        if let timeout = options.timeout, !CommandLineValues.isValidDuration(timeout) {
            throw RegistryError.invalidTimeout(timeout)
        }
        do { try ImageSetLayout.checkSizes(memory: options.memory, sharedMemory: options.sharedMemory) } catch {
            throw RegistryError.launch(error)
        }
        let imageSet: ImageSet
        do { imageSet = try ImageSet.open(path, as: caller) } catch { throw RegistryError.launch(error) }
        var asked = engine
        if options.connect != nil {
            if let engine, engine != .libvirt { throw RegistryError.connectNeedsLibvirt(engine) }
            asked = .libvirt
        }
        let choice: EngineChoice
        do { choice = try EngineChoice(among: engines, asked: asked, for: imageSet.manifest) } catch {
            throw RegistryError.noEngine(error)
        }
        let entry = try reserve(
            name: requested, base: imageSet.manifest.name, path: path, manifest: imageSet.manifest, choice: choice,
            host: options.connect, promising: MemoryAdmission.promised(by: imageSet.manifest, options: options))
        let run: any RunningImageSet
        do { run = try choice.engine.launch(imageSet, options: options, console: entry.log) } catch {
            forget(entry.name)
            throw RegistryError.launch(error)
        }
        entry.run.withLock { current in
            current = run
            // A stop that arrived while the VMs were being made is honoured now: the set never runs on.
            if let reason = entry.pendingStop.withLock({ $0 }) { run.stop(reason: reason) }
        }
        entry.listening.withLock { $0 = run.listening.isEmpty ? nil : run.listening }
        do {
            _ = try MonitorThread(name: "set-\(entry.name)", detached: true) { [self] in
                supervise(entry, run, timeout: options.timeout)
            }
        } catch {
            run.stop(reason: "the daemon could not supervise it")
            _ = run.wait(timeout: nil)
            forget(entry.name)
            throw RegistryError.launch(error)
        }
        return status(of: entry)
    }

    /// Every image set, running or ended, in launch order.
    public func list() -> [ImageSetStatus] {
        let names = order.withLock { $0 }
        let all = entries.withLock { $0 }
        return names.compactMap { all[$0] }.map(status(of:))
    }

    public func status(_ name: String) throws(RegistryError) -> ImageSetStatus { status(of: try entry(name)) }

    /// The state of every VM of `name`: live while it runs, as it ended afterwards.
    public func inspect(_ name: String) throws(RegistryError) -> [CompartmentSnapshot] {
        let entry = try entry(name)
        if let run = entry.run.withLock({ $0 }) { return run.inspect() }
        return entry.outcome.withLock { $0?.snapshot } ?? []
    }

    /// The console log of `name` (and, once it ended, its final report).
    public func log(_ name: String) throws(RegistryError) -> ConsoleLog { try entry(name).log }

    /// The VMs of `name`, as its logs name them ("comp1", or "comp1+comp2" under fcalls).
    public func compartmentNames(_ name: String) throws(RegistryError) -> [String] {
        ImageSetLayout.machines(try entry(name).manifest).map(\.name)
    }

    /// Stops `name` and waits (up to `timeout` seconds) for its VMs to end.
    public func stop(_ name: String, reason: String = "stopped by request", timeout: Double = 5) throws(RegistryError)
        -> ImageSetStatus
    {
        let entry = try entry(name)
        entry.run.withLock { run in
            if let run { run.stop(reason: reason) } else { entry.pendingStop.withLock { $0 = reason } }
        }
        waitForOutcome(of: [entry], timeout: timeout)
        return status(of: entry)
    }

    /// Forgets an image set that has ended.
    public func remove(_ name: String) throws(RegistryError) {
        let entry = try entry(name)
        guard entry.outcome.withLock({ $0 != nil }) else { throw RegistryError.stillRunning(name) }
        forget(name)
    }

    /// Stops every running image set and waits (up to `timeout` seconds) until each has
    /// ended and released its VMs: the daemon is going.
    public func stopAll(reason: String, timeout: Double = 10) {
        let all = entries.withLock { Array($0.values) }
        for entry in all { entry.run.withLock { $0 }?.stop(reason: reason) }
        waitForOutcome(of: all, timeout: timeout)
    }

    /// How many image sets are running.
    public var runningCount: Int { entries.withLock { $0.values.filter { $0.outcome.withLock { $0 == nil } }.count } }

    // MARK: - Internals

    private func forget(_ name: String) {
        entries.withLock { _ = $0.removeValue(forKey: name) }
        order.withLock { $0.removeAll { $0 == name } }
    }

    /// Waits until every entry's supervisor has recorded how it ended (its VMs are gone then).
    private func waitForOutcome(of entries: [Entry], timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while entries.contains(where: { $0.outcome.withLock { $0 == nil } }) && Date() < deadline { usleep(1000) }
    }

    private func supervise(_ entry: Entry, _ run: any RunningImageSet, timeout: Double?) {
        let report = run.wait(timeout: timeout)
        let snapshot = run.inspect()
        if let message = report.message, report.outcome != "exited" {
            entry.log.append(
                .init(
                    compartment: "flexosd",
                    text: "[flexosd] "
                        + message.split(separator: "\n", omittingEmptySubsequences: false).joined(
                            separator: "\n[flexosd] ") + "\n"))
        }
        entry.outcome.withLock { $0 = (report, snapshot) }
        entry.run.withLock { $0 = nil }  // releases the VMs, their memory and threads
        entry.log.close()
        onEnd(status(of: entry), report)
    }

    /// Takes the name and the memory the launch promises, under one lock: two launches
    /// cannot both count on the same free memory.
    private func reserve(
        name requested: String?, base: String, path: String, manifest: ImageManifest, choice: EngineChoice,
        host: String?,
        promising bytes: UInt64
    ) throws(RegistryError) -> Entry {
        let limit = MemoryAdmission.limit
        let reserved: Result<Entry, RegistryError> = entries.withLock { entries in
            var name = requested ?? base
            if requested == nil {
                var suffix = 2
                while entries[name] != nil {
                    name = "\(base)-\(suffix)"
                    suffix += 1
                }
            } else if entries[name] != nil {
                return .failure(.nameTaken(name))
            }
            let promised = entries.values.filter { $0.outcome.withLock { $0 == nil } }.reduce(UInt64(0)) {
                $0 &+ $1.promised
            }
            guard promised <= limit, bytes <= limit - promised else {
                return .failure(
                    .notEnoughMemory(
                        asked: bytes, promised: promised, limit: limit, source: MemoryAdmission.limitSource))
            }
            let entry = Entry(name: name, path: path, manifest: manifest, choice: choice, host: host)
            entry.promised = bytes
            entries[name] = entry
            return .success(entry)
        }
        let entry = try reserved.get()
        order.withLock { $0.append(entry.name) }
        return entry
    }

    private func entry(_ name: String) throws(RegistryError) -> Entry {
        guard let entry = entries.withLock({ $0[name] }) else { throw RegistryError.unknownImageSet(name) }
        return entry
    }

    private func status(of entry: Entry) -> ImageSetStatus {
        let outcome = entry.outcome.withLock { $0 }
        return ImageSetStatus(
            name: entry.name, path: entry.path, mechanism: entry.manifest.mechanism.rawValue,
            engine: entry.choice.engine.kind.rawValue, engineReason: entry.choice.reason, host: entry.host,
            compartments: entry.manifest.compartments.map(\.name), state: outcome?.report.outcome ?? "running",
            exitStatus: outcome?.report.exitStatus, message: outcome?.report.message,
            launchedAt: entry.launchedAt.timeIntervalSince1970,
            seconds: outcome?.report.wallSeconds ?? Date().timeIntervalSince(entry.launchedAt),
            launchStartedAt: entry.launchStartedAt, firstOutputAt: entry.log.firstOutputAt,
            listening: outcome == nil ? entry.listening.withLock { $0 } : nil)
    }

}
