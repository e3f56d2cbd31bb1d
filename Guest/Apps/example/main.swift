import FlexOS

/// The library calls this back through a gate: it is one of this application's exports.
@_cdecl("example_callback")
public func callback(_ value: Int32) {
    print("callback called!")
}

/// A static buffer handed to the library: shared data, mapped in every compartment.
@section(".data_shared") @used
nonisolated(unsafe) var staticBuffer: (UInt64, UInt64, UInt64, UInt64) = (0x4141_4141_4141_4141, 0, 0, 0)

/// A private static buffer: it stays in this application's own data, which no other
/// compartment maps.
nonisolated(unsafe) var staticAppSecret: (UInt64, UInt64, UInt64, UInt64) = (0x5445_5243_4553, 0, 0, 0)

@_cdecl("app_main")
public func appMain() -> Int32 {
    staticAppSecret.0 = 0x42
    // Stack data the library must see lives on the shared stack.
    let stackIntAfter = SharedMemory.withValue(Int32(21)) { stackInt in
        SharedMemory.withBuffer(of: CChar.self, count: 32) { stackBuffer in
            withUnsafeMutablePointer(to: &staticBuffer) { buffer in
                flexosexample.lib_func(Exports.callback, UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self), stackInt, stackBuffer)
            }
            return stackInt.pointee
        }
    }
    print("lib_func set stack_int to \(stackIntAfter) and cleared static_buf: \(staticBuffer.0 & 0xFF == 0 ? "yes" : "no")")
    return stackIntAfter == 42 ? 0 : 1
}
