import CFlexOSGuest
import FlexOS

/// 10,000 gate calls, each after a pause of 0 to 400 µs (a fixed pseudo-random sequence):
/// the callee's idle polling ends at any point of the pause, so wakes land on every step of
/// its way into sleep. A wake that is lost leaves both sides asleep, and the run times out.
@_cdecl("app_main")
public func appMain() -> Int32 {
    let perMicrosecond = max(Clock.ticksPerSecond / 1_000_000, 1)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var ticks: Int64 = 0
    for _ in 0..<10_000 {
        ticks = tickerlib.tick(ticks)
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let pause = (state >> 33) % 400 * perMicrosecond
        let started = flexos_cycles()
        while flexos_cycles() &- started < pause { flexos_cpu_relax() }
    }
    print("wakestress calls=\(ticks)")
    return 0
}
