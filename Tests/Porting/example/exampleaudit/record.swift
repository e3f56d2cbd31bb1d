import FlexOS

/// The running total.
nonisolated(unsafe) var total: Int64 = 0

public func record(_ value: Int64) -> Int64 {
    total += value
    print("audit: \(total) call(s) recorded")
    return total
}
