import CKVM
import Glibc
import GuestImage
import GuestMachine
import KVM
import Synchronization

/// Coordinates the vCPU threads of one running image set.
///
/// The first end (an exit, panic, fault, timeout or stop) wins; every vCPU is then kicked
/// out of KVM_RUN and every sleeper woken, so the whole set stops together. Sleeping and
/// waking between compartments (the wait and wake hypercalls) go through here too.
final class RunControl: @unchecked Sendable {
    private struct State {
        var end: RunEnd?
        var firstHypercallAt: UInt64?
        var pendingFault: PendingFault?
        var panicCode: PanicCode?
        var finishActions: [@Sendable () -> Void] = []
    }

    /// The code a panic was about (a conflicting access, an allocation site), named by
    /// the thread that waits for the run, like a fault.
    struct PanicCode: Sendable {
        let machine: Int
        let address: UInt64
    }

    /// A fault as its vCPU thread saw it: the registers, and what the thread already knew.
    /// It is analysed (symbols, DWARF, the gate block) by the thread that waits for the
    /// run, outside the vCPU thread's seccomp filter.
    struct PendingFault: Sendable {
        let machine: Int
        let registers: kvm_regs
        let specialRegisters: kvm_sregs
        /// Set when the runner already knows what happened (a bad hypercall).
        let kind: FaultReport.Kind?
        let summary: String?
        /// The exception, when the exception entry reported it (nil after a triple fault).
        var exception: CPUException? = nil
    }

    private let state = Mutex(State())
    private let finished = Atomic<Bool>(false)
    private let vcpus: [VCPU]
    private let threads = Mutex<[MonitorThread]>([])
    /// One per VM: signalled by a wake hypercall aimed at it.
    private let wakeEvents: [EventNotifier]
    /// Signalled once, when the run ends: every wait returns.
    let endEvent: EventNotifier
    /// One per VM: its confined vCPU thread writes (system call + 1) here when it made a
    /// forbidden call and was ended (VCPUConfinement).
    let violationEvents: [EventNotifier]
    /// The VMs' names, for reports.
    private let names: [String]

    init(vcpus: [VCPU], names: [String]) throws(KVMError) {
        self.vcpus = vcpus
        self.names = names
        var events: [EventNotifier] = []
        var violations: [EventNotifier] = []
        for _ in vcpus {
            events.append(try EventNotifier())
            violations.append(try EventNotifier())
        }
        wakeEvents = events
        violationEvents = violations
        endEvent = try EventNotifier()
    }

    var isFinished: Bool { finished.load(ordering: .acquiring) }
    var end: RunEnd? { state.withLock { $0.end } }
    var firstHypercallAt: UInt64? { state.withLock { $0.firstHypercallAt } }
    var pendingFault: PendingFault? { state.withLock { $0.pendingFault } }
    var panicCode: PanicCode? { state.withLock { $0.panicCode } }

    /// Ends the run with a fault, to be analysed once the vCPU threads are joined.
    func finish(fault: PendingFault) {
        finish(pendingFault: fault) { .failed(message: "a fault in \(names[fault.machine]) awaits analysis") }
    }

    func add(_ thread: MonitorThread) { threads.withLock { $0.append(thread) } }

    /// Runs `action` when the run ends (at once if it has): how a device learns to stop.
    func whenFinished(_ action: @escaping @Sendable () -> Void) {
        let already = state.withLock { state -> Bool in
            if state.end == nil { state.finishActions.append(action) }
            return state.end != nil
        }
        if already { action() }
    }

    /// Notes the time of a hypercall; only the first one is kept.
    func noteHypercall() {
        state.withLock { if $0.firstHypercallAt == nil { $0.firstHypercallAt = monotonicNanoseconds() } }
    }

    /// Ends the run with `makeEnd()` unless it has already ended; then stops every vCPU.
    /// `makeEnd` runs only for the winner.
    @discardableResult
    func finish(pendingFault: PendingFault? = nil, panicCode: PanicCode? = nil, _ makeEnd: () -> RunEnd) -> Bool {
        let won = state.withLock { state -> [@Sendable () -> Void]? in
            guard state.end == nil else { return nil }
            state.end = makeEnd()
            state.pendingFault = pendingFault
            state.panicCode = panicCode
            defer { state.finishActions = [] }
            return state.finishActions
        }
        guard let actions = won else { return false }
        actions.forEach { $0() }
        finished.store(true, ordering: .releasing)
        for vcpu in vcpus { vcpu.requestImmediateExit() }
        for thread in threads.withLock({ $0 }) { thread.kick() }
        endEvent.signal()
        return true
    }

    /// Blocks VM `index` until it is woken, the run ends, or `timeout` nanoseconds pass.
    /// Returns whether it was woken.
    func wait(_ index: Int, timeout: UInt64?) -> Bool {
        let wake = wakeEvents[index]
        if wake.consume() { return true }
        var fds = [
            pollfd(fd: wake.fd.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: endEvent.fd.rawValue, events: Int16(POLLIN), revents: 0)
        ]
        // ppoll takes nanoseconds, so a short wait is short (poll would round it up to 1 ms).
        // The guest's timeout is any UInt64: seconds beyond Int.max mean "for ever".
        var limit = timeout.map {
            timespec(tv_sec: Int(min($0 / 1_000_000_000, UInt64(Int.max))), tv_nsec: Int($0 % 1_000_000_000))
        }
        while !isFinished {
            let ready = limit == nil ? ckvm_ppoll(&fds, 2, nil) : ckvm_ppoll(&fds, 2, &limit!)
            if ready < 0 && errno == EINTR { continue }
            return wake.consume()
        }
        return false
    }

    /// Wakes VM `index` (a wake that comes before the wait is kept).
    func wake(_ index: Int) { wakeEvents[index].signal() }

    /// The eventfd that wakes VM `index`: what its doorbell signals.
    func wakeEvent(of index: Int) -> EventNotifier { wakeEvents[index] }

    /// Waits until the run ends or `timeout` seconds pass; returns false on timeout. A vCPU
    /// thread that its seccomp filter ended ends the run here.
    func waitForEnd(timeout: Double?) -> Bool {
        var fds =
            [pollfd(fd: endEvent.fd.rawValue, events: Int16(POLLIN), revents: 0)]
            + violationEvents.map { pollfd(fd: $0.fd.rawValue, events: Int16(POLLIN), revents: 0) }
        let deadline = timeout.map { monotonicNanoseconds() + UInt64($0 * 1e9) }
        while !isFinished {
            var milliseconds: Int32 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                if now >= deadline { return false }
                milliseconds = Int32(min((deadline - now) / 1_000_000 + 1, UInt64(Int32.max)))
            }
            _ = poll(&fds, nfds_t(fds.count), milliseconds)
            for (index, event) in violationEvents.enumerated() where fds[index + 1].revents != 0 {
                var value: UInt64 = 0
                guard read(event.fd.rawValue, &value, 8) == 8, value > 0 else { continue }
                let call = VCPUConfinement.name(ofSystemCall: Int32(truncatingIfNeeded: value - 1))
                finish {
                    .failed(
                        message:
                            "the vCPU thread of \(names[index]) made system call \(value - 1) (\(call)), which its seccomp filter forbids: flexosd ended that thread and stopped the image set"
                    )
                }
            }
        }
        return true
    }

    func joinAll() {
        for thread in threads.withLock({ $0 }) { thread.join() }
    }
}
