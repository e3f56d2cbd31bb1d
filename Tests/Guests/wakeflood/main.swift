import CFlexOSGuest
import FlexOS

/// Wakes compartment 1 (and itself) thousands of times, then makes a gate call: spurious
/// wakes must cost the sleeper nothing but a look at its inbox.
@_cdecl("app_main")
public func appMain() -> Int32 {
    var wake = flexos_hc_wake(compartment: 1, reserved: 0)
    for round in 0..<10_000 {
        wake.compartment = UInt32(round % 2)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAKE.rawValue), &wake)
    }
    print("after the flood: \(tickerlib.tick(99))")
    return 0
}
