import FlexOS

/// A class's stored property: the compiler cannot prove accesses to it exclusive, so
/// with exclusivity-checks each access is checked while the program runs.
public final class Counter {
    public var value = 0
    public init() {}
}

@inline(never)
func increment(_ value: inout Int, while body: () -> Void) {
    body()
    value += 1
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    let counter = Counter()
    // Modifies counter.value inside an access that is already modifying it.
    increment(&counter.value) { counter.value = 10 }
    print("the overlapping modification went unnoticed: value \(counter.value)")
    return 0
}
