/// The canary every stack-protected function checks before it returns.
@_silgen_name("__stack_chk_guard")
nonisolated(unsafe) var stackGuard: UInt = 0

enum StackProtector {
    /// Gives the canary a random value. Runs first at boot, before any protected function.
    static func arm() {
        var value: UInt = 0
        Random.fill(&value, count: MemoryLayout<UInt>.size)
        stackGuard = value | 0xFF  // a low byte that is never 0: string copies stop short of it
    }
}

/// Called by a stack-protected function whose canary was overwritten.
@_cdecl("__stack_chk_fail")
public func stackCheckFail() -> Never {
    panic("stack smashing detected: a stack buffer overflowed its frame")
}
