import FlexOS

let warmUpCalls = 20_000
let measuredCalls = 500_000

/// Counts the baseline's calls, so the optimiser cannot drop them.
public nonisolated(unsafe) var localCalls = 0

/// The baseline: a call that stays in this library and is not inlined.
@inline(never)
func localEmpty() -> Int64 {
    localCalls &+= 1
    return 0
}

/// Nanoseconds `calls` runs of `body` take (two time hypercalls around the loop).
func time(_ calls: Int, _ body: () -> Int64) -> UInt64 {
    var sink: Int64 = 0
    let start = Hypercalls.monotonicNanoseconds()
    for _ in 0..<calls { sink &+= body() }
    let end = Hypercalls.monotonicNanoseconds()
    if sink != 0 { print("unexpected result \(sink)") }
    return end - start
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    _ = time(warmUpCalls) { gatebenchlib.empty() }
    let gate = time(measuredCalls) { gatebenchlib.empty() }
    let direct = time(measuredCalls) { localEmpty() }
    print("gatebench calls=\(measuredCalls) gate_ns=\(gate) direct_ns=\(direct) local_calls=\(localCalls)")
    return 0
}
