import FlexOS

@_cdecl("example_unshared_callback")
public func callback(_ value: Int32) {
    print("callback called!")
}

@section(".data_shared") @used
nonisolated(unsafe) var staticBuffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

@_cdecl("app_main")
public func appMain() -> Int32 {
    // The bug: stack_int is an ordinary local, on this compartment's private stack.
    var stackInt: Int32 = 21
    return SharedMemory.withBuffer(of: CChar.self, count: 32) { stackBuffer in
        withUnsafeMutablePointer(to: &staticBuffer) { buffer in
            withUnsafeMutablePointer(to: &stackInt) { privateStackInt in
                flexosexample.lib_func(Exports.callback, UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self), privateStackInt, stackBuffer)
            }
        }
        return stackInt == 42 ? 0 : 1
    }
}
