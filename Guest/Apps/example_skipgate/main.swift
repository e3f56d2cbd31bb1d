import FlexOS

@_cdecl("example_skipgate_callback")
public func callback(_ value: Int32) {
    print("callback called!")
}

/// The bug: the library's function itself, declared by hand instead of reached
/// through the generated gate `flexosexample.lib_func`.
@_extern(c, "flexosexample_lib_func")
func libFuncWithoutGate(_ callback: FlexOSExport, _ staticBuffer: UnsafeMutablePointer<CChar>,
                        _ stackInt: UnsafeMutablePointer<Int32>, _ stackBuffer: UnsafeMutablePointer<CChar>)

@_cdecl("app_main")
public func appMain() -> Int32 {
    SharedMemory.withValue(Int32(21)) { stackInt in
        SharedMemory.withBuffer(of: CChar.self, count: 64) { buffers in
            libFuncWithoutGate(Exports.callback, buffers, stackInt, buffers + 32)
            return stackInt.pointee == 42 ? 0 : 1
        }
    }
}
