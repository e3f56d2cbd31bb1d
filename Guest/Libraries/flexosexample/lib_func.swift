import FlexOS

/// Uses all four arguments, as the seed's lib_func does: every pointer must be one the
/// library's compartment can reach, and the callback goes back through a gate.
@_cdecl("flexosexample_lib_func")
public func libFunc(_ callback: FlexOSExport, _ staticBuffer: UnsafeMutablePointer<CChar>,
                    _ stackInt: UnsafeMutablePointer<Int32>, _ stackBuffer: UnsafeMutablePointer<CChar>) {
    staticBuffer.pointee = 0
    stackBuffer.pointee = 0
    stackInt.pointee = 42
    exampleaudit.record(1)
    callback.call(84)
}
