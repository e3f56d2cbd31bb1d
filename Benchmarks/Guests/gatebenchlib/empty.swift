import FlexOS

@_cdecl("gatebenchlib_empty")
public func empty() -> Int64 { 0 }
