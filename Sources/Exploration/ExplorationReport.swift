import Foundation

/// An exploration as people and scripts read it: one row per configuration in walk
/// order, the budget, the candidates, and build times cold and cached.
public struct ExplorationReport: Codable, Sendable {
    public struct Row: Codable, Sendable {
        /// The configuration's number (c001...), as in the results folder.
        public let number: String
        public let id: String
        public let mechanism: String
        public let compartments: String
        public let hardening: String
        public let level: Int
        public let figure: Double?
        /// met, missed, failed or pruned.
        public let verdict: String
        /// For a pruned configuration, the one below it that missed.
        public let prunedBy: String?
        public let candidate: Bool
        public let buildSeconds: Double?
        /// Whether its build compiled a library (cold) or took every one from the cache.
        public let buildCold: Bool?
        public let error: String?
    }

    public let space: String
    public let unit: String
    public let higherIsBetter: Bool
    public let budget: String
    public let best: Double?
    public let threshold: Double?
    public let configurations: Int
    public let measured: Int
    public let measuredNow: Int
    public let candidates: [String]
    public let rows: [Row]

    public init(_ exploration: Exploration, store: ResultStore) {
        let poset = exploration.poset
        space = exploration.space.name
        unit = exploration.space.benchmark.unit
        higherIsBetter = exploration.space.benchmark.higherIsBetter
        budget = exploration.space.budget.description
        best = exploration.best
        threshold = exploration.threshold
        configurations = poset.nodes.count
        measured = exploration.measuredCount
        measuredNow = exploration.measuredNow
        candidates = exploration.candidates.map { store.name($0) }
        rows = poset.walk.map { node in
            let configuration = poset.nodes[node]
            let measurement = exploration.measurements[node]
            var prunedBy: String?
            let verdict: String
            switch exploration.verdicts[node] {
            case .met: verdict = "met"
            case .missed: verdict = "missed"
            case .failed: verdict = "failed"
            case .pruned(let by):
                verdict = "pruned"
                prunedBy = store.name(by)
            case .unavailable: verdict = "not here"
            }
            return Row(
                number: store.name(node), id: configuration.id, mechanism: configuration.mechanism.rawValue,
                compartments: configuration.layoutDescription, hardening: configuration.hardeningDescription,
                level: poset.level[node], figure: measurement?.figure, verdict: verdict, prunedBy: prunedBy,
                candidate: exploration.candidates.contains(node), buildSeconds: measurement?.buildSeconds,
                buildCold: measurement.map { !$0.compiledLibraries.isEmpty },
                error: measurement?.error
                    ?? { if case .unavailable(let reason) = exploration.verdicts[node] { reason } else { nil } }())
        }
    }

    /// The table, then a summary: what was measured, the budget, the candidates, builds.
    public var text: String {
        let header = ["#", "mechanism", "compartments", "hardening", "figure", "build", "verdict", ""]
        let cells = rows.map { row in
            [
                row.number, row.mechanism, row.compartments, row.hardening, row.figure.map(format) ?? "-",
                row.buildSeconds.map { String(format: "%.1f s ", $0) + (row.buildCold == true ? "cold" : "cached") }
                    ?? "-",
                row.verdict + (row.prunedBy.map { " (above \($0))" } ?? ""), row.candidate ? "candidate" : ""
            ]
        }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max() ?? 0 }
        let line = { (fields: [String]) in
            zip(fields, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        var lines = [line(header)] + cells.map(line)
        lines.append("")
        lines.append(contentsOf: summary)
        return lines.joined(separator: "\n")
    }

    public var summary: [String] {
        var lines = [
            "\(configurations) configurations; \(measured) measured (\(measuredNow) in this run), \(configurations - measured) pruned."
        ]
        if let best, let threshold {
            lines.append(
                "best \(format(best)) \(unit); budget \(budget): \(higherIsBetter ? "at least" : "at most") \(format(threshold)) \(unit)."
            )
        }
        for row in rows where row.candidate {
            lines.append("candidate \(row.number): \(row.id), \(row.figure.map(format) ?? "-") \(unit)")
        }
        if candidates.isEmpty { lines.append("no configuration meets the budget.") }
        let failures = rows.filter { $0.verdict == "failed" }
        for row in failures { lines.append("failed \(row.number): \(row.id): \(row.error ?? "?")") }
        for (label, cold) in [("cold", true), ("cached", false)] {
            let times = rows.filter { $0.buildCold == cold }.compactMap(\.buildSeconds)
            if !times.isEmpty {
                lines.append(
                    "builds \(label): \(times.count), "
                        + String(
                            format: "mean %.1f s, max %.1f s", times.reduce(0, +) / Double(times.count),
                            times.max() ?? 0))
            }
        }
        return lines
    }

    private func format(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.3g", value)
    }
}
