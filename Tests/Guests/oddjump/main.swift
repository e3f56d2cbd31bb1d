import FlexOS

/// Calls a function at a non-canonical address (a general-protection fault, not a page
/// fault): the monitor must still say where the guest was and what it did.
@_cdecl("app_main")
public func appMain() -> Int32 {
    print("jumping to a non-canonical address")
    let target = unsafeBitCast(UInt(0x8000_0000_0000_1000) | UInt(Hypercalls.monotonicNanoseconds() >> 63), to: (@convention(c) () -> Void).self)
    target()
    return 0
}
