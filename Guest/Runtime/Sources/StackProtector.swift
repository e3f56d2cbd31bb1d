// The canary every stack-protected function checks before it returns is
// `__stack_chk_guard` in Support/support.c: read-only, and written by the monitor.

/// Called by a stack-protected function whose canary was overwritten.
@_cdecl("__stack_chk_fail")
public func stackCheckFail() -> Never {
    panic("stack smashing detected: a stack buffer overflowed its frame")
}
