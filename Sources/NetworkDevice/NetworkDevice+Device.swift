import CFlexOSABI
import ControlProtocol
import GuestImage
import GuestMachine
import KVM

extension DeviceKind {
    /// The stream device for TCP (flexos_abi.h, "The network device"), "net" in library.yaml.
    public static let network = DeviceKind.named("net")!
}

/// The network device as the KVM engine sees every device: its window, its one hypercall
/// (net_kick), the boot info that tells the guest where it is, its loop and its report.
extension NetworkDevice: Device {
    package var kind: DeviceKind { .network }

    package var hypercalls: [UInt64: String] { [UInt64(FLEXOS_HYPERCALL_NET_KICK.rawValue): "net_kick"] }

    package func describe(in bootInfo: inout flexos_boot_info, for machine: DeviceMachine) {
        bootInfo.net_device = machine.holdsDevice ? kind.window.lowerBound : 0
        bootInfo.net_doorbell = machine.holdsDevice && machine.doorbells ? FLEXOS_NET_DOORBELL : 0
        bootInfo.client_idle_timeout = idleTimeoutSeconds
    }

    /// The kick: a store to FLEXOS_NET_DOORBELL signals the eventfd the loop reads in io_uring.
    package var doorbell: (address: UInt64, event: EventNotifier)? { (FLEXOS_NET_DOORBELL, kickEvent) }

    /// net_kick: the guest published work while the loop slept (where no doorbell is wired).
    /// Its argument block carries nothing the device reads.
    package func handle(hypercall number: UInt64, argument: UInt64, space: GuestAddressSpace)
        -> DeviceHypercallResult
    {
        kick()
        return .resume
    }

    package func report() -> DeviceReport {
        let counters = statistics.counters
        let listening = listeners.map(\.boundAddress.description)
        let accepted = counters["accepted", default: 0]
        let closed = counters["closed", default: 0]
        let open = accepted >= closed ? accepted - closed : 0
        let summary =
            "listening on \(listening.isEmpty ? "nothing" : listening.joined(separator: ", ")); "
            + "\(accepted) connections (\(open) open, \(counters["refused", default: 0]) refused, "
            + "\(counters["timedOut", default: 0]) timed out), \(formatBytes(counters["bytesReceived", default: 0])) in, "
            + "\(formatBytes(counters["bytesSent", default: 0])) out, \(counters["kicks", default: 0]) kicks, "
            + "\(counters["wakes", default: 0]) wakes"
        return DeviceReport(
            kind: kind.name, description: kind.description, listening: listening, summary: summary, counters: counters)
    }
}

extension NetworkStatistics {
    /// Every counter now, by the name reports and metrics use.
    var counters: [String: UInt64] {
        [
            "accepted": accepted.load(ordering: .relaxed), "refused": refused.load(ordering: .relaxed),
            "closed": closed.load(ordering: .relaxed), "timedOut": timedOut.load(ordering: .relaxed),
            "bytesReceived": bytesReceived.load(ordering: .relaxed), "bytesSent": bytesSent.load(ordering: .relaxed),
            "kicks": kicks.load(ordering: .relaxed), "wakes": wakes.load(ordering: .relaxed),
            "sleeps": sleeps.load(ordering: .relaxed)
        ]
    }
}

/// Makes the network device of each launch that declares one (`devices: [net]`), listening
/// on the launch's `--listen` addresses.
package struct NetworkDeviceProvider: DeviceProvider {
    package var kind: DeviceKind { .network }

    package init() {}

    /// `--listen` needs a network device to listen for.
    package func check(_ options: LaunchOptions, imageSet manifest: ImageManifest) throws(LaunchError) {
        guard manifest.library(holding: kind) == nil, let address = options.listen.first else { return }
        throw LaunchError.noNetworkDevice(imageSet: manifest.name, address: address.description)
    }

    package func makeDevice(for manifest: ImageManifest, options: LaunchOptions) throws(LaunchError) -> any Device {
        do {
            return try NetworkDevice(
                name: manifest.name, listen: options.listen, idleTimeout: options.clientIdleTimeout)
        } catch {
            throw LaunchError.device(error.description)
        }
    }
}
