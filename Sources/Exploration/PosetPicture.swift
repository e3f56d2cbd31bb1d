/// The poset as an SVG picture, like the talk's figure: the least safe configuration at
/// the bottom, each level of the order one row up, a line for each edge of the Hasse
/// diagram. A node's colour says its compartments (one colour per placement); it is
/// filled when hardened and hollow when not; its label is its figure, or its number
/// when it was pruned; a red ring marks a miss, a star a candidate.
public struct PosetPicture: Sendable {
    public let exploration: Exploration
    public let store: ResultStore

    public init(_ exploration: Exploration, store: ResultStore) {
        self.exploration = exploration
        self.store = store
    }

    static let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
    ]
    static let spacing = (x: 46.0, y: 90.0), radius = 15.0, margin = 40.0

    public var svg: String {
        let poset = exploration.poset
        let rows = Dictionary(grouping: poset.walk, by: { poset.level[$0] })
        let widest = rows.values.map(\.count).max() ?? 1
        let width = Double(widest) * PosetPicture.spacing.x + 2 * PosetPicture.margin
        let levels = (rows.keys.max() ?? 0) + 1
        let legendHeight = 24.0 * Double(layouts.count + 3)
        let height = Double(levels) * PosetPicture.spacing.y + 2 * PosetPicture.margin + legendHeight
        var position: [Int: (x: Double, y: Double)] = [:]
        for (level, nodes) in rows {
            let offset = (width - Double(nodes.count) * PosetPicture.spacing.x) / 2 + PosetPicture.spacing.x / 2
            for (column, node) in nodes.enumerated() {
                position[node] = (
                    offset + Double(column) * PosetPicture.spacing.x,
                    height - legendHeight - PosetPicture.margin - Double(level) * PosetPicture.spacing.y - PosetPicture
                        .spacing.y / 2
                )
            }
        }
        var body = ""
        for node in poset.nodes.indices {
            for lower in poset.covers[node] {
                let (a, b) = (position[node]!, position[lower]!)
                body +=
                    "<line x1=\"\(f(a.x))\" y1=\"\(f(a.y))\" x2=\"\(f(b.x))\" y2=\"\(f(b.y))\" stroke=\"#bbb\" stroke-width=\"0.6\"/>\n"
            }
        }
        for node in poset.nodes.indices { body += circle(node, at: position[node]!) }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(PosetPicture.margin))" y="24" font-size="16">\(escape(title))</text>
            \(body)\(legend(top: height - legendHeight))</svg>

            """
    }

    private var title: String {
        let e = exploration
        return
            "\(e.space.name): \(e.poset.nodes.count) configurations, \(e.measuredCount) measured, budget \(e.space.budget.description) (\(e.space.benchmark.unit)); safer is higher"
    }

    /// The distinct placements, in enumeration order; a node's colour is its placement's.
    private var layouts: [String] {
        var seen: [String] = []
        for node in exploration.poset.nodes where !seen.contains(node.layoutDescription) {
            seen.append(node.layoutDescription)
        }
        return seen
    }

    private func colour(_ node: Int) -> String {
        let index = layouts.firstIndex(of: exploration.poset.nodes[node].layoutDescription) ?? 0
        return PosetPicture.palette[index % PosetPicture.palette.count]
    }

    private func circle(_ node: Int, at point: (x: Double, y: Double)) -> String {
        let configuration = exploration.poset.nodes[node]
        let verdict = exploration.verdicts[node]
        let fill = configuration.isHardened ? colour(node) : "white"
        let dash = verdict.isMeasured ? "" : " stroke-dasharray=\"3,2\" opacity=\"0.55\""
        let label = exploration.measurements[node]?.figure.map(short) ?? (verdict == .failed ? "fail" : "")
        var text = "<g><title>\(escape(store.name(node) + " " + configuration.id))</title>"
        if verdict == .missed || verdict == .failed {
            text +=
                "<circle cx=\"\(f(point.x))\" cy=\"\(f(point.y))\" r=\"\(f(PosetPicture.radius + 4))\" fill=\"none\" stroke=\"#a00\" stroke-width=\"1.5\"/>"
        }
        text +=
            "<circle cx=\"\(f(point.x))\" cy=\"\(f(point.y))\" r=\"\(f(PosetPicture.radius))\" fill=\"\(fill)\" stroke=\"\(colour(node))\" stroke-width=\"3\"\(dash)/>"
        if !label.isEmpty {
            let ink = configuration.isHardened ? "white" : "black"
            text +=
                "<text x=\"\(f(point.x))\" y=\"\(f(point.y + 4))\" font-size=\"10\" text-anchor=\"middle\" fill=\"\(ink)\">\(escape(label))</text>"
        }
        if exploration.candidates.contains(node) {
            text += "<text x=\"\(f(point.x + 12))\" y=\"\(f(point.y - 10))\" font-size=\"20\" fill=\"#d4a000\">★</text>"
        }
        return text + "</g>\n"
    }

    private func legend(top: Double) -> String {
        var text = ""
        var y = top + 10
        for (index, layout) in layouts.enumerated() {
            let colour = PosetPicture.palette[index % PosetPicture.palette.count]
            text +=
                "<circle cx=\"\(f(PosetPicture.margin + 8))\" cy=\"\(f(y))\" r=\"7\" fill=\"\(colour)\"/><text x=\"\(f(PosetPicture.margin + 22))\" y=\"\(f(y + 4))\" font-size=\"12\">\(escape(layout))</text>\n"
            y += 24
        }
        text +=
            "<text x=\"\(f(PosetPicture.margin))\" y=\"\(f(y + 4))\" font-size=\"12\">filled: hardened; hollow: not; dashed: pruned (not measured); red ring: missed the budget; label: figure (k = thousands); ★ candidate</text>\n"
        return text
    }

    private func short(_ value: Double) -> String {
        value >= 10_000
            ? "\(Int((value / 1000).rounded()))k"
            : value >= 1000
                ? "\(Int((value / 100).rounded()) / 10).\(Int((value / 100).rounded()) % 10)k"
                : "\(Int(value.rounded()))"
    }

    private func f(_ value: Double) -> String { String(Int(value.rounded())) }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
