import FlexOS

/// Makes one honest gate call, then posts a request for export 0xFFFFFFFF to tickerlib's
/// compartment. The callee must refuse it back and keep running; this compartment, whose
/// request it was, ends with a panic.
@_cdecl("app_main")
public func appMain() -> Int32 {
    print("honest call: \(tickerlib.tick(41))")
    _ = Gates.remoteCall(machine: 1, export: 0xFFFF_FFFF, 0, 0, 0, 0, 0, 0)
    print("the bogus call returned")
    return 0
}
