import Foundation
import Toolchain

/// Applies a porting plan (`flexos-port --write`): the source edits, and the proposed
/// `uses` and `exports` in library.yaml (its other lines kept as they are).
public struct Porter {
    public let plan: PortingPlan

    public init(plan: PortingPlan) { self.plan = plan }

    public func write() throws(PortingError) {
        for (path, edits) in plan.edits where !edits.isEmpty {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw PortingError.write(path, "cannot read it again")
            }
            try save(SourceEdit.apply(unique(edits), to: text), to: path)
        }
        if plan.manifestChanges { try writeManifest() }
    }

    /// The same edit can come from two findings (a closure scope two arguments use).
    private func unique(_ edits: [SourceEdit]) -> [SourceEdit] {
        var seen: [SourceEdit] = []
        for edit in edits where !seen.contains(edit) { seen.append(edit) }
        return seen
    }

    /// Replaces the `uses:` line and the `exports:` block of library.yaml.
    private func writeManifest() throws(PortingError) {
        let path = plan.folder + "/" + LibraryDescriptor.fileName
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PortingError.write(path, "cannot read it again")
        }
        var lines: [String] = []
        var inExports = false
        for line in text.components(separatedBy: "\n") {
            if inExports && (line.hasPrefix(" ") || line.hasPrefix("-")) { continue }
            inExports = line.hasPrefix("exports:")
            if line.hasPrefix("uses:") || inExports { continue }
            lines.append(line)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        if !plan.proposedUses.isEmpty { lines.append("uses: [\(plan.proposedUses.joined(separator: ", "))]") }
        if !plan.proposedExports.isEmpty {
            lines.append("exports:")
            lines += plan.proposedExports.map { "  - \"\($0)\"" }
        }
        try save(lines.joined(separator: "\n") + "\n", to: path)
    }

    private func save(_ text: String, to path: String) throws(PortingError) {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw PortingError.write(path, error.localizedDescription)
        }
    }
}

extension PortingPlan {
    /// The plan as people read it.
    public var report: String {
        var lines = ["library \(library) (\(folder))"]
        func list(_ items: [String]) -> String { items.isEmpty ? "none" : items.joined(separator: ", ") }
        lines.append(
            "  uses: \(list(proposedUses))"
                + (proposedUses == currentUses ? "" : "   (library.yaml has \(list(currentUses)))"))
        lines.append(
            "  exports:" + (proposedExports.isEmpty ? " none" : "")
                + (proposedExports == currentExports ? "" : "   (library.yaml differs; it has \(list(currentExports)))")
        )
        for export in proposedExports {
            let name = String(export.prefix { $0 != "(" })
            lines.append("    \(export)" + (usedBy[name].map { "   used by \($0.joined(separator: ", "))" } ?? ""))
        }
        if !callbackParameters.isEmpty {
            lines.append(
                "  callbacks it receives (function parameters become FlexOSExport, called with .call): \(callbackParameters.joined(separator: ", "))"
            )
        }
        for declaration in handDeclarations {
            lines.append(
                "  \(relative(declaration.file)):\(declaration.line)  \(declaration.name) is declared by hand as \(declaration.symbol), the export of gate \(declaration.gate): its calls skip the gate [--write calls the gate and removes the declaration]"
            )
        }
        if !calls.isEmpty { lines.append("  calls into other libraries, through their gates:") }
        for call in calls {
            lines.append("    \(relative(call.file)):\(call.line)  \(call.before)\n      -> \(call.after)")
        }
        if !sharedData.isEmpty { lines.append("  data another compartment cannot reach:") }
        for data in sharedData {
            lines.append(
                "    \(relative(data.file)):\(data.line)  \(data.name) (\(data.kind.rawValue)) passed to \(data.passedTo): \(data.fix)"
                    + (data.automatic ? " [--write applies it]" : " [fix by hand]"))
        }
        let pending = edits.values.map(\.count).reduce(0, +)
        lines.append(
            needsAttention
                ? "  needs attention: \(pending) source edit(s)\(manifestChanges ? " and library.yaml" : "") for --write, \(sharedData.filter { !$0.automatic }.count) fix(es) by hand"
                : "  ported: nothing to change")
        return lines.joined(separator: "\n")
    }

    private func relative(_ path: String) -> String {
        path.hasPrefix(folder + "/") ? String(path.dropFirst(folder.count + 1)) : path
    }
}
