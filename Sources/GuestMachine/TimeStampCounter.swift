import CKVM
import KVM

/// The rate of the time-stamp counter, which guests read to time their gate calls.
/// Measured once against CLOCK_MONOTONIC over about two milliseconds.
package enum TimeStampCounter {
    package static let ticksPerNanosecond: Double = {
        let startTicks = ckvm_rdtsc()
        let startTime = monotonicNanoseconds()
        while monotonicNanoseconds() - startTime < 2_000_000 {}
        return Double(ckvm_rdtsc() - startTicks) / Double(monotonicNanoseconds() - startTime)
    }()

    package static func nanoseconds(_ ticks: Double) -> Double { ticks / ticksPerNanosecond }
}
