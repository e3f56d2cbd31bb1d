import Foundation
import GuestImage
import Yams

extension Conformation {
    /// Reads and checks the conformation in `path`; its name is the file name without `.yaml`.
    public static func load(path: String) throws(ConformationError) -> Conformation {
        let text: String
        do { text = try ConfigFile.text(at: path, limit: Conformation.maxFileSize) } catch {
            throw ConformationError(file: path, line: nil, error.message)
        }
        return try parse(yaml: text, name: ConfigFile.name(of: path), file: path)
    }

    /// Parses a conformation from YAML text. `file` names the text in error messages.
    public static func parse(yaml: String, name: String, file: String = "config.yaml") throws(ConformationError)
        -> Conformation
    {
        guard yaml.utf8.count <= maxFileSize else {
            throw ConformationError(
                file: file, line: nil, "is larger than \(maxFileSize) bytes; a conformation is a page of YAML")
        }
        guard ImageManifest.isValidName(name) else {
            throw ConformationError(
                file: file, line: nil,
                "its name \(name.debugDescription) (the file name) cannot name an image set: use letters, digits, '-', '_' and '.'"
            )
        }
        return try ConformationParser(file: file).parse(yaml: yaml, name: name)
    }

    /// Conformations are small; a bigger file is refused before YAML parses it.
    public static let maxFileSize = 1 << 20

}

/// Reads the YAML node tree, so every error can name its line.
struct ConformationParser {
    let file: String

    func parse(yaml: String, name: String) throws(ConformationError) -> Conformation {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw ConformationError(file: file, line: yamlLine(error), "is not valid YAML: \(yamlProblem(error))")
        }
        guard let root, let top = root.mapping else {
            throw fail(root, "must be a mapping with `compartments:` (and `libraries:`)")
        }
        for key in top.keys where !["compartments", "libraries", "app"].contains(key.string ?? "") {
            throw fail(key, "unknown key `\(key.string ?? "?")` (expected compartments, libraries, app)")
        }
        guard let compartmentsNode = top["compartments"] else { throw fail(root, "has no `compartments:` list") }
        let compartments = try parseCompartments(compartmentsNode)
        let placements =
            try top["libraries"].map { node throws(ConformationError) in
                try parsePlacements(node, compartments: compartments)
            } ?? []
        let application = try top["app"].map { node throws(ConformationError) in try string(node, "app") }
        return Conformation(name: name, application: application, compartments: compartments, placements: placements)
    }

    private func parseCompartments(_ node: Node) throws(ConformationError) -> [Conformation.Compartment] {
        guard let items = node.sequence, !items.isEmpty else {
            throw fail(node, "`compartments:` must be a non-empty list")
        }
        if items.count > GuestLayout.maxCompartments {
            throw fail(node, "\(items.count) compartments; at most \(GuestLayout.maxCompartments) are supported")
        }
        var compartments: [Conformation.Compartment] = []
        for item in items {
            let compartment = try parseCompartment(item)
            if compartments.contains(where: { $0.name == compartment.name }) {
                throw fail(item, "compartment \(compartment.name) is defined twice")
            }
            compartments.append(compartment)
        }
        let defaults = compartments.filter(\.isDefault)
        if defaults.isEmpty {
            throw fail(
                node,
                "no compartment is marked `default: True`; mark the one that holds the libraries not listed under `libraries:`"
            )
        }
        if defaults.count > 1 {
            throw fail(
                node,
                "\(defaults.map(\.name).joined(separator: " and ")) are both marked default; only one compartment can be"
            )
        }
        let mechanisms = Set(compartments.map(\.mechanism))
        if mechanisms.count > 1 {
            throw fail(
                node,
                "compartments use different mechanisms (\(compartments.map { "\($0.name): \($0.mechanism.rawValue)" }.joined(separator: ", "))); one conformation uses one mechanism"
            )
        }
        return compartments
    }

    /// One list item: `- comp1:` followed by its settings as sibling keys (the seed's
    /// shape), or nested under the name (`- comp1: {mechanism: vmept}`).
    private func parseCompartment(_ item: Node) throws(ConformationError) -> Conformation.Compartment {
        guard let mapping = item.mapping else {
            throw fail(item, "a compartment must be a mapping like `- comp1:` with its settings")
        }
        let settingKeys: Set<String> = ["mechanism", "default", "hardening"]
        let nameKeys = mapping.filter { !settingKeys.contains($0.key.string ?? "") }
        guard nameKeys.count == 1, let name = nameKeys[0].key.string, !name.isEmpty else {
            let names = nameKeys.compactMap { $0.key.string }
            throw fail(
                item,
                names.isEmpty
                    ? "a compartment needs a name (`- comp1:`)"
                    : "one list item names several compartments or unknown settings: \(names.joined(separator: ", ")) (settings are mechanism, default, hardening)"
            )
        }
        guard ImageManifest.isValidName(name) else {
            throw fail(
                nameKeys[0].key,
                "\(name.debugDescription) cannot name a compartment: use up to 64 letters, digits, '-', '_' and '.'")
        }
        var settings = Array(mapping.filter { settingKeys.contains($0.key.string ?? "") })
        let nested = nameKeys[0].value
        if let inner = nested.mapping {
            for (key, _) in inner where !settingKeys.contains(key.string ?? "") {
                throw fail(
                    key,
                    "unknown setting `\(key.string ?? "?")` of compartment \(name) (expected mechanism, default, hardening)"
                )
            }
            settings += inner.map { $0 }
        } else if nested.null == nil {
            throw fail(nested, "compartment \(name) must be followed by its settings, not by a value")
        }
        var mechanism: Mechanism?
        var isDefault = false
        var hardening: [Hardening] = []
        for (key, value) in settings {
            switch key.string {
            case "mechanism": mechanism = try parseMechanism(value, compartment: name)
            case "default":
                guard let flag = value.bool else {
                    throw fail(value, "`default` of compartment \(name) must be True or False")
                }
                isDefault = flag
            default: hardening = try parseHardening(value, compartment: name)
            }
        }
        guard let mechanism else {
            throw fail(item, "compartment \(name) has no `mechanism:` (one of \(mechanismNames))")
        }
        return Conformation.Compartment(name: name, mechanism: mechanism, isDefault: isDefault, hardening: hardening)
    }

    private var mechanismNames: String { "fcalls, vmept, intel-mpk" }

    private func parseMechanism(_ node: Node, compartment: String) throws(ConformationError) -> Mechanism {
        let name = try string(node, "mechanism")
        guard let mechanism = Mechanism(configName: name) else {
            throw fail(
                node,
                "unknown mechanism `\(name)` for compartment \(compartment) (known: \(mechanismNames); intel-pku means intel-mpk)"
            )
        }
        return mechanism
    }

    private func parseHardening(_ node: Node, compartment: String) throws(ConformationError) -> [Hardening] {
        guard let items = node.sequence else {
            throw fail(
                node, "`hardening` of compartment \(compartment) must be a list, e.g. [stack-protector, bounds-checks]")
        }
        var result: [Hardening] = []
        for item in items {
            let name = try string(item, "hardening option")
            do {
                for option in try Hardening.options(named: name) where !result.contains(option) {
                    result.append(option)
                }
            } catch { throw fail(item, error.message) }
        }
        return result
    }

    private func parsePlacements(_ node: Node, compartments: [Conformation.Compartment]) throws(ConformationError) -> [(
        library: String, compartment: String
    )] {
        if node.null != nil { return [] }
        guard let items = node.sequence else {
            throw fail(node, "`libraries:` must be a list of `- library: compartment`")
        }
        var placements: [(library: String, compartment: String)] = []
        var placed = Set<String>()
        for item in items {
            guard let mapping = item.mapping, mapping.count == 1, let library = mapping[0].key.string,
                let compartment = mapping[0].value.string
            else {
                throw fail(item, "each entry of `libraries:` must be `- library: compartment`")
            }
            guard compartments.contains(where: { $0.name == compartment }) else {
                throw fail(
                    item,
                    "library \(library) is placed in compartment \(compartment), which is not defined (defined: \(compartments.map(\.name).joined(separator: ", ")))"
                )
            }
            guard isIdentifier(library) else {
                throw fail(
                    mapping[0].key, "\(library.debugDescription) cannot name a library: use letters, digits and _")
            }
            guard placed.insert(library).inserted else { throw fail(item, "library \(library) is placed twice") }
            placements.append((library, compartment))
        }
        return placements
    }

    private func string(_ node: Node, _ what: String) throws(ConformationError) -> String {
        guard let value = node.scalar?.string, !value.isEmpty else { throw fail(node, "\(what) must be a name") }
        return value
    }

    private func fail(_ node: Node?, _ message: String) -> ConformationError {
        ConformationError(file: file, line: node?.mark.map { $0.line }, message)
    }

    private func yamlLine(_ error: Error) -> Int? {
        switch error as? YamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    private func yamlProblem(_ error: Error) -> String {
        switch error as? YamlError {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default: return "\(error)"
        }
    }
}
