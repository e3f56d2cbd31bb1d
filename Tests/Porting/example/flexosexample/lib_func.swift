import FlexOS

/// Writes to the four arguments it is given, records the call and calls back.
public func lib_func(_ callback: (Int32) -> Void, _ staticBuffer: UnsafeMutablePointer<CChar>,
                     _ stackInt: UnsafeMutablePointer<Int32>, _ stackBuffer: UnsafeMutablePointer<CChar>) {
    staticBuffer.pointee = 0
    stackBuffer.pointee = 0
    stackInt.pointee = 42
    _ = record(1)
    callback(84)
}
