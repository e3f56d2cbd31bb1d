import CFlexOSGuest

/// How long an idle side polls before it sleeps, learned from how its idle periods end
/// (KVM's halt-polling rule, in the guest): an idle period that slept but ended within
/// `maximum` would have been caught by polling, so the window grows (doubling, from
/// `start`); one that outlasted `maximum` was a wasted spin, so the window halves (to 0
/// below `start`). A busy pair thus polls through its short gaps without exits, and an idle
/// one stops burning a core before it sleeps. Times are TSC ticks.
public struct AdaptiveSpin {
    /// How long to poll now.
    public private(set) var window: UInt64
    let start: UInt64
    let maximum: UInt64

    /// Starts at `startMicroseconds`, grows to at most `maximumMicroseconds`.
    public init(startMicroseconds: UInt64 = 10, maximumMicroseconds: UInt64 = 200) {
        // The TSC's rate from the boot info; 2.5 GHz where the monitor gave none.
        let perMicrosecond = Clock.ticksPerSecond >= 1_000_000 ? Clock.ticksPerSecond / 1_000_000 : 2500
        start = startMicroseconds &* perMicrosecond
        maximum = maximumMicroseconds &* perMicrosecond
        window = start
    }

    /// Whether an idle period that began at tick `idleSince` should still poll.
    public func shouldPoll(since idleSince: UInt64) -> Bool { flexos_cycles() &- idleSince < window }

    /// An idle period that began at tick `idleSince` ended now (work came, or its time was
    /// up); `slept`: it went to sleep before it ended.
    public mutating func idleEnded(since idleSince: UInt64, slept: Bool) {
        guard slept else { return }
        if flexos_cycles() &- idleSince <= maximum {
            window = min(max(window &* 2, start), maximum)
        } else {
            window = window / 2 < start ? 0 : window / 2
        }
    }
}
