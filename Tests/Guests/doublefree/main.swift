import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    let block = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
    block.deallocate()
    block.deallocate()
    print("the double free went unnoticed")
    return 0
}
