import FlexOS

/// The running total: private to this library's compartment.
nonisolated(unsafe) var total: Int64 = 0

@_cdecl("exampleaudit_record")
public func record(_ value: Int64) -> Int64 {
    total += value
    print("audit: \(total) call(s) recorded")
    return total
}
