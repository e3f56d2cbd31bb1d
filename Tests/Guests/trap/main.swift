import FlexOS

/// Reads past the end of an array; the compartment is built with bounds checks.
@inline(never)
func readPastTheEnd(_ values: [Int], _ index: Int) -> Int { values[index] }

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to index out of bounds")
    return Int32(readPastTheEnd([1, 2, 3], 7))
}
