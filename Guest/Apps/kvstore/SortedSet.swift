/// A sorted set: its members ordered by (score, member) in an AVL tree whose nodes count
/// their subtree, and each member's score by member. Adding, updating and removing a member
/// is O(log n) whatever the scores (Redis documents ZADD as O(log n)), and so is a rank or
/// the start of a range (ZRANK, ZRANGE: O(log n + k)); popping k of the lowest is
/// O(k log n), or one O(n) rebuild when k is a large part of the set.
struct SortedSet {
    struct Element {
        var score: Double
        var member: [UInt8]
    }

    /// A tree node, kept in `nodes` and linked by index (no object per member).
    struct Node {
        var element: Element
        var left: Int32 = SortedSet.none
        var right: Int32 = SortedSet.none
        var height: Int8 = 1
        /// The nodes of the subtree rooted here, this one included.
        var size: Int32 = 1
    }

    static let none: Int32 = -1
    private var nodes: [Node] = []
    /// Slots of `nodes` whose member was removed, reused by the next inserts.
    private var freeSlots: [Int32] = []
    private var scores: [[UInt8]: Double] = [:]
    /// Last, so that the struct ends in 4 bytes a key's Entry uses for its encoding hint.
    private var root = SortedSet.none

    var count: Int { scores.count }

    /// The same members and scores in storage of its own: a balanced tree, rebuilt in order.
    func copied() -> SortedSet {
        var elements: [Element] = []
        elements.reserveCapacity(count)
        visit(from: 0, limit: count, reversed: false) { elements.append($0) }
        var copy = SortedSet()
        copy.scores.reserveCapacity(count)
        for element in elements { copy.scores[element.member] = element.score }
        copy.rebuild(from: elements[...])
        return copy
    }

    /// Each member's score (shared storage: no copy is made until one of them changes).
    var scoresByMember: [[UInt8]: Double] { scores }

    /// The score of `member`, if it is in the set.
    func score(of member: [UInt8]) -> Double? { scores[member] }

    /// Removes `member`; whether it was there.
    mutating func remove(_ member: [UInt8]) -> Bool {
        guard let old = scores.removeValue(forKey: member) else { return false }
        root = remove(Element(score: old, member: member), from: root)
        return true
    }

    /// Adds or updates `member`; true when it is new. A score of -0 is kept as 0, as Redis
    /// keeps it in the compact encoding of every set of up to 128 members.
    mutating func add(_ member: [UInt8], score: Double) -> Bool {
        let score = score == 0 ? 0 : score
        let old = scores.updateValue(score, forKey: member)
        if let old { root = remove(Element(score: old, member: member), from: root) }
        root = insert(Element(score: score, member: member), into: root)
        return old == nil
    }

    /// What adding `members` may allocate beside what it replaces: the node array's and the
    /// score table's next storage (MemoryCost), both live once both have grown.
    func growth(adding members: Int) -> MemoryCost.Pieces {
        MemoryCost.Pieces(
            MemoryCost.arrayGrowth(
                count: nodes.count, capacity: nodes.capacity, adding: max(members - freeSlots.count, 0),
                stride: MemoryLayout<Node>.stride, grown: SortedSet.grownCapacity),
            MemoryCost.tableGrowth(
                count: scores.count, capacity: scores.capacity, adding: members,
                stride: MemoryLayout<[UInt8]>.stride + MemoryLayout<Double>.stride))
    }

    /// Folds `next` over the `limit` lowest elements, in order (what a pop of that many takes).
    func reduceLowest<R>(_ limit: Int, _ initial: R, _ next: (R, Element) -> R) -> R {
        var result = initial, left = limit
        inOrder { element in
            guard left > 0 else { return false }
            result = next(result, element)
            left -= 1
            return true
        }
        return result
    }

    /// Removes the `count` lowest elements and returns them in order.
    mutating func popMinimum(_ count: Int) -> [Element] {
        let taken = min(max(count, 0), self.count)
        var all: [Element] = []
        // Removing one at a time costs k log n; past about n / log n, rebuilding the rest is
        // cheaper. A rebuild also gives back the slots of members removed earlier once they
        // outnumber the members left.
        let logarithm = Int.bitWidth - self.count.leadingZeroBitCount
        let rebuilds = taken &* logarithm > self.count || freeSlots.count + taken > self.count - taken
        all.reserveCapacity(rebuilds ? self.count : taken)
        reduceLowest(rebuilds ? self.count : taken, ()) { _, element in all.append(element) }
        let popped = Array(all.prefix(taken))
        for element in popped { scores[element.member] = nil }
        if rebuilds {
            rebuild(from: all[taken...])
        } else {
            for element in popped { root = remove(element, from: root) }
        }
        return popped
    }

    // MARK: The tree

    private func precedes(_ a: Element, _ b: Element) -> Bool {
        a.score < b.score || a.score == b.score && a.member.lexicographicallyPrecedes(b.member)
    }

    private func height(_ node: Int32) -> Int8 { node == SortedSet.none ? 0 : nodes[Int(node)].height }

    private func size(_ node: Int32) -> Int { node == SortedSet.none ? 0 : Int(nodes[Int(node)].size) }

    // MARK: Ranks and ranges

    /// The rank of `member` (0 for the lowest), if it is in the set.
    func rank(of member: [UInt8]) -> Int? {
        guard let score = scores[member] else { return nil }
        let probe = Element(score: score, member: member)
        return count { precedes($0, probe) }
    }

    /// How many elements come before the first for which `before` is false: `before` must
    /// hold for a prefix of the order (below a range's start, say). O(log n).
    func count(_ before: (Element) -> Bool) -> Int {
        var node = root, counted = 0
        while node != SortedSet.none {
            if before(nodes[Int(node)].element) {
                counted += size(nodes[Int(node)].left) + 1
                node = nodes[Int(node)].right
            } else {
                node = nodes[Int(node)].left
            }
        }
        return counted
    }

    /// Calls `visit` on up to `limit` elements from rank `start` on, lowest first, or
    /// highest first (ranks then counted from the highest) when `reversed`. O(log n + k).
    func visit(from start: Int, limit: Int, reversed: Bool, _ visit: (Element) -> Void) {
        // Towards the start of the order, and away from it.
        let near = { (node: Int32) in reversed ? self.nodes[Int(node)].right : self.nodes[Int(node)].left }
        let far = { (node: Int32) in reversed ? self.nodes[Int(node)].left : self.nodes[Int(node)].right }
        var path: [Int32] = [], node = root, skip = start
        while node != SortedSet.none {
            let before = size(near(node))
            if skip < before {
                path.append(node)
                node = near(node)
            } else if skip == before {
                path.append(node)
                break
            } else {
                skip -= before + 1
                node = far(node)
            }
        }
        var left = limit
        while left > 0, let next = path.popLast() {
            visit(nodes[Int(next)].element)
            left -= 1
            var child = far(next)
            while child != SortedSet.none {
                path.append(child)
                child = near(child)
            }
        }
    }

    /// Calls `visit` on the elements in order until it returns false.
    private func inOrder(_ visit: (Element) -> Bool) {
        var path: [Int32] = []
        var node = root
        while node != SortedSet.none || !path.isEmpty {
            while node != SortedSet.none { path.append(node); node = nodes[Int(node)].left }
            let next = path.removeLast()
            guard visit(nodes[Int(next)].element) else { return }
            node = nodes[Int(next)].right
        }
    }

    private mutating func makeNode(_ element: Element) -> Int32 {
        if let slot = freeSlots.popLast() {
            nodes[Int(slot)] = Node(element: element)
            return slot
        }
        // By half, not Array's doubling: the copy of a large set's nodes is the largest
        // allocation a sorted set makes, and a doubling one no longer fit where the data did.
        if nodes.count == nodes.capacity { nodes.reserveCapacity(SortedSet.grownCapacity(nodes.capacity)) }
        nodes.append(Node(element: element))
        return Int32(nodes.count - 1)
    }

    /// The node array's next capacity.
    static func grownCapacity(_ capacity: Int) -> Int { capacity &+ max(capacity / 2, 16) }

    private mutating func insert(_ element: Element, into node: Int32) -> Int32 {
        guard node != SortedSet.none else { return makeNode(element) }
        if precedes(element, nodes[Int(node)].element) {
            let child = insert(element, into: nodes[Int(node)].left)
            nodes[Int(node)].left = child
        } else {
            let child = insert(element, into: nodes[Int(node)].right)
            nodes[Int(node)].right = child
        }
        return balance(node)
    }

    /// Removes the node holding `probe`'s score and member from the subtree at `node`.
    private mutating func remove(_ probe: Element, from node: Int32) -> Int32 {
        guard node != SortedSet.none else { return node }
        let here = nodes[Int(node)].element
        if precedes(probe, here) {
            let child = remove(probe, from: nodes[Int(node)].left)
            nodes[Int(node)].left = child
        } else if precedes(here, probe) {
            let child = remove(probe, from: nodes[Int(node)].right)
            nodes[Int(node)].right = child
        } else {
            let (left, right) = (nodes[Int(node)].left, nodes[Int(node)].right)
            release(node)
            guard left != SortedSet.none else { return right }
            guard right != SortedSet.none else { return left }
            // The lowest of the right subtree takes this node's place.
            let (rest, lowest) = detachLowest(right)
            nodes[Int(lowest)].left = left
            nodes[Int(lowest)].right = rest
            return balance(lowest)
        }
        return balance(node)
    }

    /// The subtree at `node` without its lowest node, and that node.
    private mutating func detachLowest(_ node: Int32) -> (Int32, Int32) {
        let left = nodes[Int(node)].left
        guard left != SortedSet.none else { return (nodes[Int(node)].right, node) }
        let (rest, lowest) = detachLowest(left)
        nodes[Int(node)].left = rest
        return (balance(node), lowest)
    }

    private mutating func release(_ node: Int32) {
        nodes[Int(node)] = Node(element: Element(score: 0, member: []))
        freeSlots.append(node)
    }

    /// Restores the AVL property at `node` after one of its subtrees changed height by one.
    private mutating func balance(_ node: Int32) -> Int32 {
        let tilt = Int(height(nodes[Int(node)].left)) - Int(height(nodes[Int(node)].right))
        if tilt > 1 {
            let left = nodes[Int(node)].left
            if height(nodes[Int(left)].left) < height(nodes[Int(left)].right) { nodes[Int(node)].left = rotateLeft(left) }
            return rotateRight(node)
        }
        if tilt < -1 {
            let right = nodes[Int(node)].right
            if height(nodes[Int(right)].right) < height(nodes[Int(right)].left) { nodes[Int(node)].right = rotateRight(right) }
            return rotateLeft(node)
        }
        updateHeight(node)
        return node
    }

    /// Recomputes the height and size of `node` from its children's.
    private mutating func updateHeight(_ node: Int32) {
        let (left, right) = (nodes[Int(node)].left, nodes[Int(node)].right)
        nodes[Int(node)].height = max(height(left), height(right)) + 1
        nodes[Int(node)].size = Int32(truncatingIfNeeded: size(left) + size(right) + 1)
    }

    private mutating func rotateRight(_ node: Int32) -> Int32 {
        let pivot = nodes[Int(node)].left
        nodes[Int(node)].left = nodes[Int(pivot)].right
        nodes[Int(pivot)].right = node
        updateHeight(node)
        updateHeight(pivot)
        return pivot
    }

    private mutating func rotateLeft(_ node: Int32) -> Int32 {
        let pivot = nodes[Int(node)].right
        nodes[Int(node)].right = nodes[Int(pivot)].left
        nodes[Int(pivot)].left = node
        updateHeight(node)
        updateHeight(pivot)
        return pivot
    }

    /// Replaces the tree with a balanced one of `sorted` (in order), in fresh storage.
    private mutating func rebuild(from sorted: ArraySlice<Element>) {
        nodes = []
        freeSlots = []
        nodes.reserveCapacity(sorted.count)
        root = build(sorted, sorted.startIndex, sorted.endIndex)
    }

    private mutating func build(_ sorted: ArraySlice<Element>, _ low: Int, _ high: Int) -> Int32 {
        guard low < high else { return SortedSet.none }
        let middle = low + (high - low) / 2
        let left = build(sorted, low, middle), right = build(sorted, middle + 1, high)
        let node = makeNode(sorted[middle])
        nodes[Int(node)].left = left
        nodes[Int(node)].right = right
        updateHeight(node)
        return node
    }
}
