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

/// A sorted set: members ordered by (score, member) in runs of at most `runLimit`
/// elements (a one-level B-tree), and each member's score. An insert or a removal moves
/// the elements of one run and the list of runs, never the whole set: ZADD at the front of
/// 250,000 members no longer shifts them all.
struct SortedSet {
    struct Element {
        var score: Double
        /// The score as the client wrote it: replies give it back as text.
        var scoreText: [UInt8]
        var member: [UInt8]
    }

    static let runLimit = 256
    private var runs: [[Element]] = []
    private var scores: [[UInt8]: Double] = [:]
    private(set) var count = 0

    /// Adds or updates `member`; true when it is new.
    mutating func add(_ member: [UInt8], score: Double, text: [UInt8]) -> Bool {
        let old = scores[member]
        if let old { remove(Element(score: old, scoreText: [], member: member)) }
        scores[member] = score
        insert(Element(score: score, scoreText: text, member: member))
        return old == nil
    }

    /// Folds `next` over the `limit` lowest elements, in order (what a pop of that many takes).
    func reduceLowest<R>(_ limit: Int, _ initial: R, _ next: (R, Element) -> R) -> R {
        var result = initial, left = limit
        for run in runs where left > 0 {
            for element in run.prefix(left) { result = next(result, element) }
            left -= min(left, run.count)
        }
        return result
    }

    /// Removes the `count` lowest elements: whole runs, then the front of one.
    mutating func popMinimum(_ count: Int) -> [Element] {
        var left = min(max(count, 0), self.count), whole = 0
        var taken: [Element] = []
        taken.reserveCapacity(left)
        while whole < runs.count && runs[whole].count <= left {
            taken += runs[whole]
            left -= runs[whole].count
            whole += 1
        }
        runs.removeFirst(whole)
        if left > 0 {
            taken += runs[0].prefix(left)
            runs[0].removeFirst(left)
        }
        for element in taken { scores[element.member] = nil }
        self.count -= taken.count
        return taken
    }

    private func precedes(_ a: Element, _ b: Element) -> Bool {
        a.score < b.score || a.score == b.score && a.member.lexicographicallyPrecedes(b.member)
    }

    /// The run `element` belongs in: the first whose last element does not precede it (the
    /// last run when all do).
    private func run(for element: Element) -> Int {
        var low = 0, high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if precedes(runs[middle][runs[middle].count - 1], element) { low = middle + 1 } else { high = middle }
        }
        return min(low, runs.count - 1)
    }

    private func insertionPoint(_ element: Element, in run: [Element]) -> Int {
        var low = 0, high = run.count
        while low < high {
            let middle = (low + high) / 2
            if precedes(run[middle], element) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private mutating func insert(_ element: Element) {
        count += 1
        guard !runs.isEmpty else { runs = [[element]]; return }
        let index = run(for: element)
        runs[index].insert(element, at: insertionPoint(element, in: runs[index]))
        if runs[index].count > SortedSet.runLimit {
            let half = SortedSet.runLimit / 2
            let upper = Array(runs[index][half...])
            runs[index].removeLast(runs[index].count - half)
            runs.insert(upper, at: index + 1)
        }
    }

    /// Removes the element with `probe`'s score and member, if there is one.
    private mutating func remove(_ probe: Element) {
        guard !runs.isEmpty else { return }
        let index = run(for: probe)
        let position = insertionPoint(probe, in: runs[index])
        guard position < runs[index].count, runs[index][position].score == probe.score, runs[index][position].member == probe.member else { return }
        runs[index].remove(at: position)
        count -= 1
        if runs[index].isEmpty { runs.remove(at: index) }
    }
}
