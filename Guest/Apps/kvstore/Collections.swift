/// A list of byte strings with O(1) pushes and pops at both ends (LPUSH, RPOP, ...).
struct ByteDeque {
    private var storage: [[UInt8]] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    subscript(index: Int) -> [UInt8] {
        get { storage[(head + index) % storage.count] }
        set { storage[(head + index) % storage.count] = newValue }
    }

    /// Keeps only the elements at `range` (LTRIM), popping the rest: O(removed).
    mutating func keep(_ range: Range<Int>) {
        let dropFront = range.lowerBound, dropBack = count - range.upperBound
        for _ in 0..<dropFront { _ = popFront() }
        for _ in 0..<dropBack { _ = popBack() }
    }

    /// Removes up to `limit` elements equal to `value` (all when nil), from the back when
    /// `fromBack` (LREM); how many went. One pass that rebuilds the rest: O(n).
    mutating func remove(_ value: [UInt8], limit: Int?, fromBack: Bool) -> Int {
        var kept: [[UInt8]] = [], removed = 0
        kept.reserveCapacity(count)
        for step in 0..<count {
            let element = self[fromBack ? count - 1 - step : step]
            if element == value && removed < (limit ?? Int.max) { removed += 1 } else { kept.append(element) }
        }
        guard removed > 0 else { return 0 }
        if fromBack { kept.reverse() }
        storage = kept
        head = 0
        count = kept.count
        return removed
    }

    /// Inserts `value` before the element at `index` (LINSERT): O(n) moves, no new
    /// storage but a push's.
    mutating func insert(_ value: [UInt8], at index: Int) {
        pushBack(value)
        var position = count - 1
        while position > index {
            self[position] = self[position - 1]
            position -= 1
        }
        self[index] = value
    }

    /// The same elements in storage of its own.
    func copied() -> ByteDeque {
        var copy = ByteDeque()
        copy.storage.reserveCapacity(count)
        for index in 0..<count { copy.storage.append(self[index]) }
        copy.count = count
        return copy
    }

    /// The storage adding `members` allocates beside the old (MemoryCost).
    func growth(adding members: Int) -> Int {
        MemoryCost.arrayGrowth(
            count: count, capacity: storage.count, adding: members, stride: MemoryLayout<[UInt8]>.stride,
            grown: ByteDeque.grownCapacity)
    }

    mutating func pushFront(_ value: [UInt8]) {
        growIfFull()
        head = (head + storage.count - 1) % storage.count
        storage[head] = value
        count += 1
    }

    mutating func pushBack(_ value: [UInt8]) {
        growIfFull()
        storage[(head + count) % storage.count] = value
        count += 1
    }

    mutating func popFront() -> [UInt8]? {
        guard count > 0 else { return nil }
        let value = storage[head]
        storage[head] = []
        head = (head + 1) % storage.count
        count -= 1
        return value
    }

    mutating func popBack() -> [UInt8]? {
        guard count > 0 else { return nil }
        let index = (head + count - 1) % storage.count
        let value = storage[index]
        storage[index] = []
        count -= 1
        return value
    }

    /// The storage's next size when it is full.
    static func grownCapacity(_ capacity: Int) -> Int { max(8, capacity &* 2) }

    private mutating func growIfFull() {
        guard count == storage.count else { return }
        let capacity = ByteDeque.grownCapacity(storage.count)
        var grown: [[UInt8]] = []
        grown.reserveCapacity(capacity)
        for index in 0..<count { grown.append(self[index]) }
        while grown.count < capacity { grown.append([]) }
        storage = grown
        head = 0
    }
}
