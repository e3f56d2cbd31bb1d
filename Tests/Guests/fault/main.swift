import FlexOS

/// The address `touchUnmapped` writes to: in no region of any image set.
let unmappedAddress: UInt = 0xDEAD_0000

/// Writes to memory that is not mapped; the monitor must name this function.
@inline(never)
func touchUnmapped(_ value: UInt64) {
    UnsafeMutablePointer<UInt64>(bitPattern: unmappedAddress)!.pointee = value
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to touch unmapped memory")
    touchUnmapped(42)
    return 0
}
