import CFlexOSGuest
import FlexOS

/// Addresses a hostile guest hands the monitor: its own stack, nothing, the hypercall
/// window, near 2^64, non-canonical, the page tables' area.
func hostileAddress(_ random: inout SystemRandomNumberGenerator, valid: UInt64) -> UInt64 {
    switch random.next() % 8 {
    case 0: return valid
    case 1: return 0
    case 2: return UInt64(FLEXOS_HYPERCALL_WINDOW)
    case 3: return .max &- random.next() % 64
    case 4: return 0x8000_0000_0000_0000
    case 5: return valid &+ 4093
    case 6: return random.next()
    default: return UInt64(FLEXOS_MONITOR_AREA_BASE)
    }
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    var random = SystemRandomNumberGenerator()
    var time = flexos_hc_time(nanoseconds: 0, unix_nanoseconds: 0)
    var wait = flexos_hc_wait(timeout_nanoseconds: 0, woken: 0)
    var wake = flexos_hc_wake(compartment: 0, reserved: 0)
    var flush = flexos_hc_console_flush(reserved: 0)
    // Well-formed calls in a random order, a million or for twenty seconds (an engine that
    // forwards each call costs more per call, and under KVM each wake it sends itself now
    // raises an interrupt: 125,000-139,000 in ten seconds alone, fewer beside CI's other
    // tests): each must be served, never end the run.
    var clock = flexos_hc_time(nanoseconds: 0, unix_nanoseconds: 0)
    flexos_hypercall(UInt64(FLEXOS_HYPERCALL_TIME.rawValue), &clock)
    let deadline = clock.nanoseconds + 20_000_000_000
    var served = 0
    while served < 1_000_000 {
        switch random.next() % 4 {
        case 0: flexos_hypercall(UInt64(FLEXOS_HYPERCALL_TIME.rawValue), &time)
        case 1:
            wait.timeout_nanoseconds = 1 + random.next() % 1000
            flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAIT.rawValue), &wait)
        case 2: flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAKE.rawValue), &wake)
        default: flexos_hypercall(UInt64(FLEXOS_HYPERCALL_CONSOLE_FLUSH.rawValue), &flush)
        }
        served += 1
        if served % 1000 == 0 {
            flexos_hypercall(UInt64(FLEXOS_HYPERCALL_TIME.rawValue), &clock)
            if clock.nanoseconds > deadline { break }
        }
    }
    print("\(served) well-formed hypercalls served")
    // Then garbage: any number, any argument, until the monitor ends the run. The block's
    // first word stays under a millisecond: read as a wait's timeout, a random one would be a
    // legitimate sleep of centuries (about one run in seventy slept until the test's timeout).
    // Other memory a garbage wait reads may hold 0, "until woken": a wake of its own before
    // each call lets such a wait return (one QEMU run slept until its timeout that way).
    var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    while true {
        block = (1 + random.next() % 1_000_000, random.next(), random.next(), random.next(), random.next(), random.next())
        let valid = withUnsafeMutablePointer(to: &block) { UInt64(UInt(bitPattern: $0)) }
        let number = random.next() % 10
        let argument = hostileAddress(&random, valid: valid)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAKE.rawValue), &wake)
        flexos_hypercall(number, UnsafeMutableRawPointer(bitPattern: UInt(argument)))
    }
}
