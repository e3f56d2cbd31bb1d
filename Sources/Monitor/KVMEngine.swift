import ControlProtocol
import GuestImage
import GuestMachine
import KVM

/// flexosd's own engine: one KVM VM per compartment (or one for all), on `/dev/kvm`.
public final class KVMEngine: ImageSetEngine, Sendable {
    public let kind = EngineKind.kvm
    private let devicePath: String
    /// The devices it offers image sets (the network device), one provider per kind.
    private let devices: [any DeviceProvider]
    /// Opened on first use, then shared by every launch.
    private let hypervisor = Locked<Hypervisor?>(nil)

    package init(devicePath: String = Hypervisor.defaultDevicePath, devices: [any DeviceProvider]) {
        self.devicePath = devicePath
        self.devices = devices
    }

    public func refusal(of manifest: ImageManifest) -> String? {
        let opened: Hypervisor
        do { opened = try open() } catch { return error.description }
        if let refusal = KVMEngine.refusal(of: manifest.mechanism, on: opened) { return refusal }
        do { _ = try devices.providers(for: manifest) } catch { return error.description }
        return nil
    }

    public func launch(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError)
        -> any RunningImageSet
    {
        try ImageSetRun(imageSet, options: options, hypervisor: try open(), console: console, devices: devices)
    }

    /// Why this host's KVM cannot enforce `mechanism`, or nil when it can.
    static func refusal(of mechanism: Mechanism, on hypervisor: Hypervisor) -> String? {
        mechanism.isolation.needsProtectionKeys && !hypervisor.offersProtectionKeys ? noProtectionKeys : nil
    }

    /// Why a mechanism that needs protection keys cannot run on this host's KVM.
    static let noProtectionKeys =
        "this host's KVM offers no protection keys (KVM_GET_SUPPORTED_CPUID has no PKU: PVM and CPUs without PKU hide them from guests)"

    private func open() throws(LaunchError) -> Hypervisor {
        if let opened = hypervisor.withLock({ $0 }) { return opened }
        do {
            let opened = try Hypervisor(devicePath: devicePath)
            hypervisor.withLock { $0 = opened }
            return opened
        } catch {
            throw LaunchError.kvm(error)
        }
    }
}

extension ImageSetRun: RunningImageSet {
    public var listening: [String] { devices.flatMap { $0.report().listening } }
}
