import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    mpkhostilelib.forge_saved_stack()
    print("mpkforge: resumed after the forgery")
    return 1
}
