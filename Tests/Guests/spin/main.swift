import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("spinning for ever")
    var counter: UInt64 = 0
    while true { counter &+= 1 }
}
