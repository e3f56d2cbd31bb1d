import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    mpkhostilelib.jump_into_gate()
    print("mpkgatejump: the jump into the gate went unnoticed")
    return 1
}
