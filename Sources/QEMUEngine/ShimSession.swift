import ControlProtocol
import Glibc
import GuestImage
import GuestMachine
import KVM

/// A QEMU that runs the shim for flexosd, whoever started it (QEMURun, a libvirt domain):
/// the prepared memory, the socket the shim's control port connects to and, once QEMU's RAM
/// is known, the server of its hypercalls. It reads the run's end and makes `inspect`'s view.
public final class ShimSession: @unchecked Sendable {
    let prepared: PreparedMemory
    let files: PreparedMemory.Files
    private let control: ControlSocket
    /// The QEMU process, once started: the only peer the control socket takes.
    private let qemu = Locked<pid_t?>(nil)
    private let served = Locked<(server: HypercallServer, ram: SharedRAM)?>(nil)

    /// Writes the prepared memory into `folder` (the shim forwarding its hypercalls) and
    /// listens on the control socket there, before QEMU starts.
    init(prepared: PreparedMemory, folder: String) throws(LaunchError) {
        self.prepared = prepared
        files = try prepared.write(to: folder, servedByFlexosd: true)
        control = try ControlSocket(path: files.controlSocket)
    }

    /// Serves the hypercalls on `ram`, QEMU's RAM; console output goes to `console`.
    func serve(ram: SharedRAM, console: any ConsoleSink) throws(LaunchError) {
        let (prepared, space, qemu) = (prepared, ram.space, qemu)
        let server = try HypercallServer(
            control: control, peer: { qemu.withLock { $0 } }, ram: ram, name: prepared.layout.compartments[0].name,
            console: console
        ) { why, call in
            prepared.refusedHypercall(why, rip: call.rip, rsp: call.rsp, rbp: call.rbp, space: space)
        }
        served.withLock { $0 = (server, ram) }
    }

    /// QEMU runs as process `pid`: its connection to the control socket is taken.
    func started(pid: pid_t) { qemu.withLock { $0 = pid } }

    /// Serves the hypercalls of QEMU process `pid`, another process's child (a libvirt
    /// domain's), whose RAM is the memory file `ram` (flexosd maps it).
    public func serve(qemu pid: pid_t, ram: OwnedFileDescriptor, console: any ConsoleSink) throws(LaunchError) {
        let memory: GuestMemory
        do { memory = try GuestMemory(mapping: ram, size: prepared.qemuMemory) } catch { throw .kvm(error) }
        try serve(ram: SharedRAM(memory: memory, mapped: prepared.memory.addressSpace.mapped), console: console)
        started(pid: pid)
    }

    /// QEMU has ended: stops serving and reads how the run ended, from what a hypercall
    /// ended it with or else from the shim's report.
    public func finish(timedOut: Double?, errors: String, consoleBytes: UInt64) -> (
        end: RunEnd, report: CompartmentReport
    ) {
        let state = served.withLock { $0 }?.server.finish() ?? HypercallServer.State()
        let end =
            (timedOut == nil ? state.end : nil)
            ?? prepared.end(from: ShimReport(state.report), timedOut: timedOut, errors: errors)
        return (end, report(state, consoleBytes: consoleBytes))
    }

    /// The one VM as `inspect` shows it: live hypercall counts, gate counters and the
    /// PKRU at the last hypercall, once flexosd serves it.
    public func snapshot(running: Bool, consoleBytes: UInt64) -> CompartmentSnapshot {
        guard let (server, ram) = served.withLock({ $0 }) else {
            return prepared.snapshot(running: running, report: report(.init(), consoleBytes: consoleBytes))
        }
        let state = server.state.withLock { $0 }
        return prepared.snapshot(
            running: running, report: report(state, consoleBytes: consoleBytes), live: (ram.space, state.lastPKRU))
    }

    private func report(_ state: HypercallServer.State, consoleBytes: UInt64) -> CompartmentReport {
        CompartmentReport(
            name: prepared.layout.compartments[0].name, hypercalls: state.hypercalls,
            consoleBytes: consoleBytes + state.consoleBytes)
    }
}
