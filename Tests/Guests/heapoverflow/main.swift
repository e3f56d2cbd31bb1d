import FlexOS

/// Writes `count` bytes at `block`. Not optimised, so the compiler cannot drop stores to
/// memory that is freed right after.
@_optimize(none)
func scribble(_ block: UnsafeMutablePointer<UInt8>, count: Int) {
    for index in 0..<count { block[index] = 0x41 }
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    let block = UnsafeMutablePointer<UInt8>.allocate(capacity: 100)
    // Raw pointers have no bounds checks: bytes 100 to 103 belong to no one.
    scribble(block, count: 104)
    block.deallocate()
    print("the overflow went unnoticed")
    return 0
}
