import FlexOS

/// Public, so the optimiser keeps every store.
public nonisolated(unsafe) var sink: UInt8 = 0

@_cdecl("app_main")
public func appMain() -> Int32 {
    let first = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
    // Walks down from the heap's first block, a byte per 512, past the heap's start.
    var cursor = first
    for _ in 0..<16 {
        cursor -= 512
        sink &+= cursor.pointee
        cursor.pointee = 0
    }
    print("writing below the heap went unnoticed")
    return 0
}
