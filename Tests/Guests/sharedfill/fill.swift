import FlexOS

@_cdecl("sharedfill_fill")
public func fill(_ buffer: UnsafeMutablePointer<UInt8>, _ count: Int, _ value: UInt8) -> Int {
    buffer.update(repeating: value, count: count)
    return count
}
