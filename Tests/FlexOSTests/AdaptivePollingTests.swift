import NetworkDevice
import Testing

/// The device loop's polling window follows KVM's halt-polling rule: it grows while blocking
/// idle periods end soon enough that polling would have caught them, and shrinks (to none)
/// while they outlast the longest poll; periods that ended while it polled change nothing.
@Suite(.tags(.unit)) struct AdaptivePollingTests {
    @Test func theWindowGrowsWhileShortGapsBlockAndShrinksWhileLongOnesDo() {
        var polling = AdaptivePolling(start: 10_000, maximum: 200_000)
        #expect(polling.window == 10_000)
        #expect(
            polling.shouldPoll(since: 1_000_000, now: 1_009_999)
                && !polling.shouldPoll(since: 1_000_000, now: 1_010_000))
        polling.idleEnded(since: 0, now: 5_000, blocked: false)
        #expect(polling.window == 10_000, "an idle period that ended while polling changes nothing")
        var windows: [UInt64] = []
        for _ in 0..<6 {
            polling.idleEnded(since: 0, now: 150_000, blocked: true)
            windows.append(polling.window)
        }
        #expect(windows == [20_000, 40_000, 80_000, 160_000, 200_000, 200_000])
        windows = []
        for _ in 0..<6 {
            polling.idleEnded(since: 0, now: 5_000_000, blocked: true)
            windows.append(polling.window)
        }
        #expect(windows == [100_000, 50_000, 25_000, 12_500, 0, 0])
        #expect(!polling.shouldPoll(since: 0, now: 0), "a window of 0 blocks at once")
        polling.idleEnded(since: 0, now: 30_000, blocked: true)
        #expect(polling.window == 10_000, "from none, a short blocked gap starts it again")
    }
}
