import FlexOS

@_cdecl("tickerlib_tick")
public func tick(_ count: Int64) -> Int64 { count + 1 }
