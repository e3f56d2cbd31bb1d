import ControlProtocol
import GuestImage
import KVM

/// Something that boots image sets. flexosd's KVM engine, the QEMU engine and the libvirt
/// engine conform; the daemon holds one of each and lets a launch choose (or picks the first
/// that can).
///
/// To add an engine: conform a type here or in a module of its own, make its running sets
/// `RunningImageSet`s, and hand it to `ImageSetRegistry` in `flexosd serve`.
public protocol ImageSetEngine: Sendable {
    var kind: EngineKind { get }

    /// Why this engine cannot run `manifest` on this host, or nil when it can. Cheap and
    /// without side effects: the daemon asks every engine to pick a default.
    func refusal(of manifest: ImageManifest) -> String?

    /// Boots `imageSet`, its console going to `console`. On failure nothing is left running.
    func launch(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError)
        -> any RunningImageSet
}

/// A launched image set, whatever engine runs it.
public protocol RunningImageSet: AnyObject, Sendable {
    /// Where its network device listens ("127.0.0.1:6379"); empty without one.
    var listening: [String] { get }

    /// Ends the run from outside (a user's stop, a daemon shutting down).
    func stop(reason: String)

    /// Waits for the end (stopping the run after `timeout` seconds), releases what the run
    /// held (VMs, processes, files) and reports. Called once.
    func wait(timeout: Double?) -> RunReport

    /// The state of every VM: live while it runs, as it ended afterwards.
    func inspect() -> [CompartmentSnapshot]
}

/// The engine a launch runs on, and, when the launch named none, why this one.
public struct EngineChoice: Sendable {
    public let engine: any ImageSetEngine
    /// Nil when the launch asked for this engine.
    public let reason: String?

    /// Why no engine was chosen.
    public enum Failure: Error, CustomStringConvertible {
        /// The launch asked for an engine this flexosd does not have.
        case missing(EngineKind)
        /// The launch named no engine, and each engine said why it cannot run the set here.
        case noneCanRun(mechanism: Mechanism, refusals: [String])

        public var description: String {
            switch self {
            case .missing(let kind): "this flexosd has no \(kind.rawValue) engine"
            case .noneCanRun(let mechanism, let refusals):
                "no engine can run this \(mechanism.rawValue) image set here: " + refusals.joined(separator: "; ")
            }
        }
    }

    /// `asked`, or the first of `engines` that can run `manifest` here.
    public init(among engines: [any ImageSetEngine], asked: EngineKind?, for manifest: ImageManifest) throws(Failure) {
        if let asked {
            guard let engine = engines.first(where: { $0.kind == asked }) else { throw .missing(asked) }
            self.engine = engine
            reason = nil
            return
        }
        var refusals: [String] = []
        for engine in engines {
            if let refusal = engine.refusal(of: manifest) {
                refusals.append("\(engine.kind.rawValue) cannot (\(refusal))")
                continue
            }
            self.engine = engine
            reason =
                "no engine asked for: "
                + (refusals + ["\(engine.kind.rawValue) can run it here"]).joined(separator: "; ")
            return
        }
        throw .noneCanRun(mechanism: manifest.mechanism, refusals: refusals)
    }
}
