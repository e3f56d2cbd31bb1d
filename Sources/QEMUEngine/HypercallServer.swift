import CFlexOSABI
import ControlProtocol
import Dispatch
import Glibc
import GuestImage
import GuestMachine
import KVM

/// Serves the hypercalls the shim forwards on its control port (flexos_abi.h, "The QEMU
/// engine") with the KVM engine's `HypercallHandler`, on the guest memory QEMU shares with
/// flexosd: one implementation of every hypercall for both engines.
///
/// The control port is a Unix socket QEMU connects to (ControlSocket). For each call the
/// shim writes its record to a ring-0 page and sends one byte; each gets one answer byte.
/// Anything else it writes (a fault report, with the faulting stack) is kept for the end.
final class HypercallServer: @unchecked Sendable {
    /// What the calls did, for `inspect` and the run's report.
    struct State {
        var hypercalls: [String: UInt64] = [:]
        var consoleBytes: UInt64 = 0
        /// The PKRU ring 3 held when it last made a hypercall.
        var lastPKRU: UInt32?
        /// How a hypercall ended the run (exit, panic, a broken ABI), if one did.
        var end: RunEnd?
        /// What the shim wrote after its calls: its report of how the run ended.
        var report: [UInt8] = []
        /// A wake of this VM that no wait has consumed yet.
        var wakePending = false
    }

    let state = Locked(State())
    private let handler: HypercallHandler
    private let space: GuestAddressSpace
    private let name: String
    /// The report of a call the handler refused, made at the registers of the call.
    private let refusal: @Sendable (_ why: String, ForwardedCall) -> RunEnd
    /// Set when QEMU has ended: the thread stops waiting for it, a sleeping wait ends.
    private let over = Locked(false)
    private let sleeper = DispatchSemaphore(value: 0)
    private let done = RunEndSignal()

    /// Serves the calls of the QEMU process `peer()` names (nil until it is known), which
    /// connects to `control`, on its RAM `ram`; console output goes to `console` as VM `name`'s.
    init(
        control: ControlSocket, peer: @escaping @Sendable () -> pid_t?, ram: SharedRAM, name: String,
        console: any ConsoleSink, refusal: @escaping @Sendable (_ why: String, ForwardedCall) -> RunEnd
    ) throws(LaunchError) {
        space = ram.space
        self.name = name
        self.refusal = refusal
        let state = self.state
        handler = HypercallHandler(space: ram.space, console: ram.consoleRing, compartmentCount: 1) { bytes in
            state.withLock { $0.consoleBytes += UInt64(bytes.count) }
            console.write(bytes, compartment: name, index: 0)
        }
        _ = try MonitorThread(name: "hc-\(name)", detached: true) { [self] in
            defer { done.signal() }
            guard let connection = control.accept(from: peer, until: { over.withLock { $0 } }) else { return }
            serve(connection)
        }
    }

    /// QEMU has ended: stop serving, then return what the calls and the shim said. The console
    /// ring is drained once more, for a run that ended mid-line.
    func finish() -> State {
        over.withLock { $0 = true }
        sleeper.signal()
        _ = done.wait(timeout: nil) {}
        _ = handler.flushConsole()
        return state.withLock { $0 }
    }

    // MARK: - The connection

    /// Reads the shim's bytes until QEMU closes the port: each FLEXOS_SHIM_CALL is a call
    /// (its record in RAM) and gets its answer; anything else starts the shim's report.
    private func serve(_ connection: OwnedFileDescriptor) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var reporting = false
        while true {
            let count = buffer.withUnsafeMutableBytes { read(connection.rawValue, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var start = 0
            while !reporting && start < count {
                guard buffer[start] == UInt8(FLEXOS_SHIM_CALL), let call = ForwardedCall(in: space) else {
                    reporting = true
                    break
                }
                start += 1
                var answer = UInt8(serve(call) ? FLEXOS_SHIM_RESUME : FLEXOS_SHIM_END)
                // MSG_NOSIGNAL: QEMU may be gone (a stop during the call); no SIGPIPE for flexosd.
                _ = send(connection.rawValue, &answer, 1, Int32(MSG_NOSIGNAL))
            }
            if reporting { state.withLock { $0.report += buffer[start..<count] } }
        }
    }

    // MARK: - One call

    /// The call the shim wrote to FLEXOS_SHIM_CALL_RECORD, with ring 3's registers.
    struct ForwardedCall {
        let number: UInt64, argument: UInt64, pkru: UInt32
        let rip: UInt64, rsp: UInt64, rbp: UInt64

        init?(in space: GuestAddressSpace) {
            guard
                let record = try? space.physical(
                    FLEXOS_SHIM_CALL_RECORD, length: UInt64(MemoryLayout<flexos_shim_call>.size)
                ).loadUnaligned(as: flexos_shim_call.self)
            else { return nil }
            (number, argument, pkru) = (record.number, record.argument, UInt32(truncatingIfNeeded: record.pkru))
            (rip, rsp, rbp) = (record.rip, record.rsp, record.rbp)
        }
    }

    /// Serves one call; false when it ended the run.
    private func serve(_ call: ForwardedCall) -> Bool {
        guard let hypercall = Hypercall(number: call.number) else {
            return end(refusal("hypercall \(call.number), which is none of flexos_abi.h's", call))
        }
        state.withLock {
            $0.hypercalls[hypercall.name, default: 0] += 1
            $0.lastPKRU = call.pkru
        }
        switch handler.handle(hypercall, argument: call.argument) {
        case .resume:
            return true
        case .exit(let code):
            return end(.exited(code: code, compartment: name))
        case .panic(let message, let file, let line, _):
            let location = file.map { $0 + (line.map { ":\($0)" } ?? "") }
            return end(.panicked(message: message, location: location, compartment: name))
        case .wait(let timeout, let woken):
            let wasWoken = wait(timeout: timeout)
            try? space.write(UInt64(wasWoken ? 1 : 0), at: woken)
            return true
        case .wake:
            // One VM: the only compartment a wake can name is the caller's, whose next wait returns at once.
            state.withLock { $0.wakePending = true }
            return true
        case .invalid(let message):
            _ = handler.flushConsole()
            return end(refusal(message, call))
        }
    }

    private func end(_ end: RunEnd) -> Bool {
        state.withLock { $0.end = $0.end ?? end }
        return false
    }

    /// Sleeps until the timeout (nanoseconds; nil: until the run ends) unless a wake is
    /// pending; says whether it was woken.
    private func wait(timeout: UInt64?) -> Bool {
        let consumed = state.withLock { state -> Bool in
            defer { state.wakePending = false }
            return state.wakePending
        }
        if consumed { return true }
        if over.withLock({ $0 }) { return false }
        if let timeout {
            _ = sleeper.wait(timeout: .now() + .nanoseconds(Int(min(timeout, UInt64(Int.max)))))
        } else {
            sleeper.wait()
        }
        return false
    }
}
