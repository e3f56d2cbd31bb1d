import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    let before = SharedMemory.heapBytesInUse
    var filled = 0
    // 2000 buffers of 64 KiB: 125 MiB through a 16 MiB shared area.
    for round in 0..<2000 {
        guard let buffer = SharedMemory.allocate(UInt8.self, count: 65_536) else {
            print("shared heap exhausted at round \(round)")
            return 1
        }
        let value = UInt8(truncatingIfNeeded: round)
        filled += sharedfill.fill(buffer, 65_536, value)
        if buffer[0] != value || buffer[65_535] != value { return 2 }
        SharedMemory.deallocate(buffer)
    }
    print("shared heap: \(filled) bytes filled by the library, \(SharedMemory.heapBytesInUse - before) bytes still in use")
    return 0
}
