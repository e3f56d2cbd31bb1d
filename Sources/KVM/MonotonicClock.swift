import Glibc

/// CLOCK_MONOTONIC in nanoseconds: the clock the monitor, its devices and its reports share.
public func monotonicNanoseconds() -> UInt64 { nanoseconds(of: CLOCK_MONOTONIC) }

/// CLOCK_REALTIME in nanoseconds since 1970: the wall clock guests ask for (Redis's TIME).
public func unixNanoseconds() -> UInt64 { nanoseconds(of: CLOCK_REALTIME) }

private func nanoseconds(of clock: clockid_t) -> UInt64 {
    var now = timespec()
    clock_gettime(clock, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
