import CKVM
import Glibc
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
    }

    private let state = Mutex(State())
    private let finished = Atomic<Bool>(false)
    private let vcpus: [VCPU]
    private let threads = Mutex<[MonitorThread]>([])
    /// One per VM: signalled by a wake hypercall aimed at it.
    private let wakeEvents: [EventNotifier]
    /// Signalled once, when the run ends: every wait returns.
    let endEvent: EventNotifier

    init(vcpus: [VCPU]) throws(KVMError) {
        self.vcpus = vcpus
        var events: [EventNotifier] = []
        for _ in vcpus { events.append(try EventNotifier()) }
        wakeEvents = events
        endEvent = try EventNotifier()
    }

    var isFinished: Bool { finished.load(ordering: .acquiring) }
    var end: RunEnd? { state.withLock { $0.end } }
    var firstHypercallAt: UInt64? { state.withLock { $0.firstHypercallAt } }

    func add(_ thread: MonitorThread) { threads.withLock { $0.append(thread) } }

    /// Notes the time of a hypercall; only the first one is kept.
    func noteHypercall() {
        state.withLock { if $0.firstHypercallAt == nil { $0.firstHypercallAt = monotonicNanoseconds() } }
    }

    /// Ends the run with `makeEnd()` unless it has already ended; then stops every vCPU.
    /// `makeEnd` runs only for the winner, so a fault is analysed once.
    @discardableResult
    func finish(_ makeEnd: () -> RunEnd) -> Bool {
        let won = state.withLock { state -> Bool in
            guard state.end == nil else { return false }
            state.end = makeEnd()
            return true
        }
        guard won else { return false }
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
        var fds = [pollfd(fd: wake.fd.rawValue, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: endEvent.fd.rawValue, events: Int16(POLLIN), revents: 0)]
        // ppoll takes nanoseconds, so a short wait is short (poll would round it up to 1 ms).
        // The guest's timeout is any UInt64: seconds beyond Int.max mean "for ever".
        var limit = timeout.map { timespec(tv_sec: Int(min($0 / 1_000_000_000, UInt64(Int.max))), tv_nsec: Int($0 % 1_000_000_000)) }
        while !isFinished {
            let ready = limit == nil ? ckvm_ppoll(&fds, 2, nil) : ckvm_ppoll(&fds, 2, &limit!)
            if ready < 0 && errno == EINTR { continue }
            return wake.consume()
        }
        return false
    }

    /// Wakes VM `index` (a wake that comes before the wait is kept).
    func wake(_ index: Int) { wakeEvents[index].signal() }

    /// Waits until the run ends or `timeout` seconds pass; returns false on timeout.
    func waitForEnd(timeout: Double?) -> Bool {
        var fd = pollfd(fd: endEvent.fd.rawValue, events: Int16(POLLIN), revents: 0)
        let deadline = timeout.map { monotonicNanoseconds() + UInt64($0 * 1e9) }
        while !isFinished {
            var milliseconds: Int32 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                if now >= deadline { return false }
                milliseconds = Int32(min((deadline - now) / 1_000_000 + 1, UInt64(Int32.max)))
            }
            _ = poll(&fd, 1, milliseconds)
        }
        return true
    }

    func joinAll() {
        for thread in threads.withLock({ $0 }) { thread.join() }
    }
}
