import FlexOS

/// Stores into `block`. Not optimised, so the compiler keeps a store to freed memory.
@_optimize(none)
func store(_ value: UInt64, into block: UnsafeMutablePointer<UInt64>, at index: Int) {
    block[index] = value
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    let block = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
    block.deallocate()
    store(0xBAD, into: block, at: 3)  // the block is free: this write lands in freed memory
    let next = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)  // first fit hands the same memory out again
    print("the write after free went unnoticed: \(next == block ? "the same block" : "another block")")
    next.deallocate()
    return 0
}
