import Conformation
import GuestImage

/// The talk's partial order of configurations by safety. A is at least as safe as B
/// when every boundary of B is a boundary of A, with a mechanism at least as strong,
/// and every library is hardened in A with at least what it has in B. Configurations
/// not related so are not comparable.
public struct SafetyOrder: Sendable {
    /// Mechanisms from weakest to strongest.
    public let mechanismOrder: [Mechanism]
    /// The libraries whose placement and hardening are compared.
    public let libraries: [String]

    public init(mechanismOrder: [Mechanism], libraries: [String]) {
        self.mechanismOrder = mechanismOrder
        self.libraries = libraries
    }

    public func isAtLeastAsSafe(_ a: Configuration, as b: Configuration) -> Bool {
        var bHasBoundary = false
        for (i, x) in libraries.enumerated() {
            guard a.hardening(of: x).isSuperset(of: b.hardening(of: x)) else { return false }
            for y in libraries[(i + 1)...] where b.compartmentIndex(of: x) != b.compartmentIndex(of: y) {
                bHasBoundary = true
                if a.compartmentIndex(of: x) == a.compartmentIndex(of: y) { return false }
            }
        }
        return !bHasBoundary || strength(a.mechanism) >= strength(b.mechanism)
    }

    /// A is safer than B: at least as safe, and B is not at least as safe as A.
    public func isSafer(_ a: Configuration, than b: Configuration) -> Bool {
        isAtLeastAsSafe(a, as: b) && !isAtLeastAsSafe(b, as: a)
    }

    private func strength(_ mechanism: Mechanism) -> Int {
        mechanismOrder.firstIndex(of: mechanism) ?? mechanismOrder.count
    }
}

/// The configurations of a space with their order worked out once: what lies below
/// each, which edges a Hasse diagram draws, and each node's level (the longest chain
/// below it), which gives a walk from the least safe up.
public struct SafetyPoset: Sendable {
    public let nodes: [Configuration]
    /// below[i]: the nodes strictly less safe than node i.
    public let below: [[Int]]
    /// covers[i]: the nodes directly below node i (nothing lies between).
    public let covers: [[Int]]
    /// level[i]: the length of the longest chain of nodes below node i.
    public let level: [Int]

    public init(_ nodes: [Configuration], order: SafetyOrder) {
        self.nodes = nodes
        let below = nodes.indices.map { i in nodes.indices.filter { j in order.isSafer(nodes[i], than: nodes[j]) } }
        self.below = below
        let belowSets = below.map(Set.init)
        covers = nodes.indices.map { i in
            below[i].filter { j in !below[i].contains { k in k != j && belowSets[k].contains(j) } }
        }
        var level = [Int](repeating: -1, count: nodes.count)
        func levelOf(_ i: Int) -> Int {
            if level[i] < 0 { level[i] = (below[i].map(levelOf).max() ?? -1) + 1 }
            return level[i]
        }
        for i in nodes.indices { _ = levelOf(i) }
        self.level = level
    }

    /// Every node, each after every node below it.
    public var walk: [Int] { nodes.indices.sorted { (level[$0], $0) < (level[$1], $1) } }
}
