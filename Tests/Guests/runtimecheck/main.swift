import FlexOS

final class Node {
    var value: Int
    var next: Node?
    init(_ value: Int, next: Node?) {
        self.value = value
        self.next = next
    }
}

/// Builds and drops a list of `count` nodes and an array of `count` integers.
@inline(never)
func churn(_ count: Int) -> Int {
    var list: Node? = nil
    for value in 0..<count { list = Node(value, next: list) }
    var numbers = [Int](repeating: 0, count: count)
    var sum = 0
    while let node = list {
        numbers[node.value] = node.value
        sum &+= node.value
        list = node.next
    }
    return sum &+ numbers.count
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    let before = PrivateHeap.bytesInUse
    var total = 0
    // 500 rounds of about 160 KiB each: 80 MiB allocated in all, in a 2 MiB heap.
    for _ in 0..<500 { total &+= churn(2_000) }
    let after = PrivateHeap.bytesInUse
    print("heap: \(total) checked, \(after - before) bytes still in use after 500 rounds")
    let long = String(repeating: "0123456789", count: 4_000)
    print("long line: \(long)")
    return after == before ? 0 : 1
}
