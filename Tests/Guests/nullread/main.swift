import FlexOS

/// Reads the word at address 0 (nothing maps it), through a pointer to address 8 so that
/// Swift's non-null pointers can express it. The 0 comes from the clock (its top bit is
/// clear for centuries), so the compiler cannot see the null access and fold it away.
@inline(never)
func readNull() -> UInt64 {
    let zero = UInt(Hypercalls.monotonicNanoseconds() >> 63)
    return UnsafeRawPointer(bitPattern: zero + 8)!.load(fromByteOffset: -8, as: UInt64.self)
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to read address 0")
    return Int32(truncatingIfNeeded: readNull())
}
