import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    mpkhostilelib.overwrite_canary()
    print("mpkcanary: the canary was changed under it")
    return 1
}
