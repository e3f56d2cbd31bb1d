import KVM

/// How long the device loop polls before it blocks in io_uring, learned from how its idle
/// periods end: the rule of KVM's halt polling, as the guest's AdaptiveSpin applies it to
/// gates and to the guest's poll. An idle period that blocked but ended within `maximum`
/// would have been caught by polling, so the window grows (doubling, from `start`); one that
/// outlasted `maximum` was a wasted spin, so the window halves (to 0 below `start`).
package struct AdaptivePolling {
    /// How long to poll now, in nanoseconds.
    package private(set) var window: UInt64
    let start: UInt64
    let maximum: UInt64

    package init(start: UInt64 = 10_000, maximum: UInt64 = 200_000) {
        self.start = start
        self.maximum = maximum
        window = start
    }

    /// Whether an idle period that began at `idleSince` (monotonic nanoseconds) should still poll.
    package func shouldPoll(since idleSince: UInt64, now: UInt64 = monotonicNanoseconds()) -> Bool {
        now &- idleSince < window
    }

    /// An idle period that began at `idleSince` ended at `now` (work came); `blocked`: it
    /// blocked before it ended.
    package mutating func idleEnded(since idleSince: UInt64, now: UInt64 = monotonicNanoseconds(), blocked: Bool) {
        guard blocked else { return }
        if now &- idleSince <= maximum {
            window = min(max(window &* 2, start), maximum)
        } else {
            window = window / 2 < start ? 0 : window / 2
        }
    }
}
