import CFlexOSABI
import ControlProtocol
import GuestImage
import KVM

/// A device of the KVM engine, for one run: memory shared between the monitor and the one
/// VM whose library declares the device (`devices: [net]`), the hypercalls that VM may make
/// to it, and a loop of its own on a monitor thread.
///
/// The engine knows devices only through this interface (Firecracker's devices on a bus,
/// Solo5's modules): it maps `memory` at the kind's window in the VM that holds it and
/// nowhere else, lets the device write that VM's boot info, routes the device's hypercall
/// numbers to it, runs it on a thread and stops it when the run ends.
///
/// To add a device: define it in `flexos_abi.h` with its line of `FLEXOS_DEVICE_KINDS` (the
/// ABI both sides share), conform a type in a module of its own, and hand its `DeviceProvider` to the KVM
/// engine in flexosd (`Sources/flexosd/Devices.swift`). `Device` and `DeviceProvider` are
/// `package`: devices are modules of this package and read the guest's memory through its
/// `GuestAddressSpace`.
package protocol Device: AnyObject, Sendable {
    var kind: DeviceKind { get }

    /// Its memory, mapped read-write at `kind.window` in the VM that holds it.
    var memory: GuestMemory { get }

    /// The hypercall numbers (flexos_abi.h) the VM that holds it may make to it, with the
    /// names its counters show. A VM that holds no such device faults on them.
    var hypercalls: [UInt64: String] { get }

    /// Writes what the guests need of the device into the boot info of each VM of the set:
    /// where it is and its doorbell, in the VM that holds it; settings every compartment may
    /// answer about (the network device's idle timeout, which Redis's CONFIG GET shows), in all.
    func describe(in bootInfo: inout flexos_boot_info, for machine: DeviceMachine)

    /// Where the VM that holds it rings to notify it (flexos_abi.h), and the eventfd its loop
    /// polls: the engine wires the one to the other in the kernel where KVM offers doorbells.
    var doorbell: (address: UInt64, event: EventNotifier)? { get }

    /// One of its hypercalls, from the vCPU thread of the VM that holds it. It must not
    /// block. `argument` is the guest's word: unchecked.
    func handle(hypercall number: UInt64, argument: UInt64, space: GuestAddressSpace) -> DeviceHypercallResult

    /// Serves the guest until `stop()`, on a monitor thread of its own; `wakeGuest` rouses
    /// the vCPU of the VM that holds it. Returns nil when stopped, or what the guest broke.
    func run(wakeGuest: () -> Void) -> DeviceViolation?

    /// Makes `run` return; called once the run ends, whatever ended it.
    func stop()

    /// What it has done so far, for `inspect`, the run report and metrics.
    func report() -> DeviceReport
}

/// What a device learns of a VM whose boot info it writes.
public struct DeviceMachine: Sendable {
    /// The VM maps the device (its library declares it).
    public let holdsDevice: Bool
    /// The engine wires doorbells in this VM: the guest rings instead of making hypercalls.
    public let doorbells: Bool

    public init(holdsDevice: Bool, doorbells: Bool) {
        self.holdsDevice = holdsDevice
        self.doorbells = doorbells
    }
}

/// What a device's hypercall asks of the vCPU loop.
package enum DeviceHypercallResult: Equatable, Sendable {
    case resume
    /// The guest broke the device's ABI: the run ends with this report.
    case invalid(String)
}

/// What the guest did wrong to a device: found by the device's loop, not at an
/// instruction, so the run's report names the device and the field.
public struct DeviceViolation: Error, Sendable, CustomStringConvertible {
    public let description: String
    /// The guest address of the field that held the wrong value.
    public let address: UInt64

    public init(description: String, address: UInt64) {
        self.description = description
        self.address = address
    }
}

/// Makes the devices of one kind, one per launch of an image set that declares it. The KVM
/// engine holds one provider per device it offers.
package protocol DeviceProvider: Sendable {
    var kind: DeviceKind { get }

    /// Refuses `options` that ask something of this kind of device of an image set that
    /// lacks it (`--listen` without a network device). Called for every launch.
    func check(_ options: LaunchOptions, imageSet manifest: ImageManifest) throws(LaunchError)

    /// The device for one launch of `manifest`, which declares it. On failure nothing is left open.
    func makeDevice(for manifest: ImageManifest, options: LaunchOptions) throws(LaunchError) -> any Device
}

extension Array where Element == any DeviceProvider {
    /// The provider of each device `manifest` declares, in its order; throws naming the first
    /// device no provider here makes.
    package func providers(for manifest: ImageManifest) throws(LaunchError) -> [any DeviceProvider] {
        try manifest.deviceKinds.map { (kind, _) throws(LaunchError) in
            guard let provider = first(where: { $0.kind == kind }) else {
                throw LaunchError.deviceMissing(kind, imageSet: manifest.name)
            }
            return provider
        }
    }
}
