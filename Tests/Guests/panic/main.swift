import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to panic")
    panic("the answer was not 42")
}
