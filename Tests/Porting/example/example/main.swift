import FlexOS

/// The library calls this back.
public func callback(_ value: Int32) {
    print("callback called!")
}

/// A static buffer handed to the library.
nonisolated(unsafe) var staticBuffer: (UInt64, UInt64, UInt64, UInt64) = (0x4141_4141_4141_4141, 0, 0, 0)

@_cdecl("app_main")
public func appMain() -> Int32 {
    var stackInt: Int32 = 21
    var stackBuffer: (UInt64, UInt64, UInt64, UInt64) = (0x4242, 0, 0, 0)
    withUnsafeMutablePointer(to: &staticBuffer) { buffer in
        withUnsafeMutablePointer(to: &stackBuffer) { stack in
            lib_func(callback, UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self), &stackInt,
                     UnsafeMutableRawPointer(stack).assumingMemoryBound(to: CChar.self))
        }
    }
    print("lib_func set stack_int to \(stackInt) and cleared static_buf: \(staticBuffer.0 & 0xFF == 0 ? "yes" : "no")")
    return stackInt == 42 ? 0 : 1
}
