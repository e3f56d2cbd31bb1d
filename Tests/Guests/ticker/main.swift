import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    var ticks: Int64 = 0
    print("ticker started")
    while true {
        ticks = tickerlib.tick(ticks)
        if ticks % 50 == 0 { print("tick \(ticks)") }
        sleep(milliseconds: 2)
    }
}
