/// A list of byte strings with O(1) pushes and pops at both ends (LPUSH, RPOP, ...).
struct ByteDeque {
    private var storage: [[UInt8]] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    subscript(index: Int) -> [UInt8] { storage[(head + index) % storage.count] }

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

    private mutating func growIfFull() {
        guard count == storage.count else { return }
        var grown: [[UInt8]] = []
        grown.reserveCapacity(max(8, storage.count * 2))
        for index in 0..<count { grown.append(self[index]) }
        while grown.count < max(8, storage.count * 2) { grown.append([]) }
        storage = grown
        head = 0
    }
}

/// A sorted set: members ordered by (score, member), and each member's score.
struct SortedSet {
    struct Element {
        var score: Double
        /// The score as the client wrote it: replies give it back as text.
        var scoreText: [UInt8]
        var member: [UInt8]
    }

    private(set) var ordered: [Element] = []
    private var scores: [[UInt8]: Double] = [:]

    var count: Int { ordered.count }

    /// Adds or updates `member`; true when it is new.
    mutating func add(_ member: [UInt8], score: Double, text: [UInt8]) -> Bool {
        let isNew = scores[member] == nil
        if let old = scores[member], let index = position(of: member, score: old) { ordered.remove(at: index) }
        scores[member] = score
        let element = Element(score: score, scoreText: text, member: member)
        ordered.insert(element, at: insertionPoint(element))
        return isNew
    }

    /// Removes the `count` lowest elements in one pass (not one shift of the rest per element).
    mutating func popMinimum(_ count: Int) -> [Element] {
        let taken = min(max(count, 0), ordered.count)
        let elements = Array(ordered.prefix(taken))
        ordered.removeFirst(taken)
        for element in elements { scores[element.member] = nil }
        return elements
    }

    private func precedes(_ a: Element, _ b: Element) -> Bool {
        a.score < b.score || a.score == b.score && a.member.lexicographicallyPrecedes(b.member)
    }

    private func insertionPoint(_ element: Element) -> Int {
        var low = 0, high = ordered.count
        while low < high {
            let middle = (low + high) / 2
            if precedes(ordered[middle], element) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private func position(of member: [UInt8], score: Double) -> Int? {
        var index = insertionPoint(Element(score: score, scoreText: [], member: member))
        while index < ordered.count && ordered[index].score == score {
            if ordered[index].member == member { return index }
            index += 1
        }
        return nil
    }
}
