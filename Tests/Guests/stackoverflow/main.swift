import FlexOS

/// Public, so the optimiser cannot prove that the recursion below never ends.
public nonisolated(unsafe) var deepestFrame = Int.max

/// Recurses until the stack runs out. Each frame hands the address of a local to the
/// next, so the frames are real and the calls cannot become a loop.
@inline(never)
func recurse(_ parent: UnsafeMutablePointer<Int>?, _ depth: Int) -> Int {
    var local = depth
    if depth == deepestFrame { return parent?.pointee ?? 0 }
    let below = recurse(&local, depth &+ 1)
    return below &+ local
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to overflow the stack")
    return Int32(truncatingIfNeeded: recurse(nil, 0))
}
