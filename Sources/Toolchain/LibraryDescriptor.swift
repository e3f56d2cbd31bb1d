import Foundation
import GuestImage
import Yams

/// A function a library exports across gates, as its library.yaml declares it:
/// `lib_func(callback: FlexOSExport, buffer: UnsafeMutablePointer<CChar>) -> Int32`.
public struct ExportSignature: Equatable, Sendable, CustomStringConvertible {
    public struct Parameter: Equatable, Sendable {
        public var label: String
        public var type: String
    }

    public var name: String
    public var parameters: [Parameter]
    /// The Swift result type, or nil for none.
    public var result: String?

    /// The declaration as library.yaml writes it.
    public var description: String {
        "\(name)(\(parameters.map { "\($0.label): \($0.type)" }.joined(separator: ", ")))"
            + (result.map { " -> \($0)" } ?? "")
    }

    /// Parses one declaration; the error text says what is wrong with it.
    public static func parse(_ text: String) -> Result<ExportSignature, ParseError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let open = trimmed.firstIndex(of: "("), let close = trimmed.lastIndex(of: ")"), open < close else {
            return .failure(ParseError("`\(text)` is not a declaration like `name(label: Type, ...) -> Type`"))
        }
        let name = String(trimmed[..<open]).trimmingCharacters(in: .whitespaces)
        guard isIdentifier(name) else { return .failure(ParseError("`\(name)` is not a valid export name")) }
        var parameters: [Parameter] = []
        for piece in splitTopLevel(String(trimmed[trimmed.index(after: open)..<close])) where !piece.isEmpty {
            let parts = piece.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, isIdentifier(parts[0]), isTypeName(parts[1]) else {
                return .failure(ParseError("parameter `\(piece)` of \(name) must be `label: Type`"))
            }
            parameters.append(Parameter(label: parts[0], type: parts[1]))
        }
        guard parameters.count <= 6 else {
            return .failure(ParseError("\(name) takes \(parameters.count) parameters; a gate carries at most 6"))
        }
        let rest = trimmed[trimmed.index(after: close)...].trimmingCharacters(in: .whitespaces)
        var result: String? = nil
        if !rest.isEmpty {
            guard rest.hasPrefix("->") else {
                return .failure(ParseError("unexpected `\(rest)` after the parameters of \(name)"))
            }
            let type = rest.dropFirst(2).trimmingCharacters(in: .whitespaces)
            guard type == "()" || isTypeName(type) else {
                return .failure(ParseError("`\(type)` is not a result type of \(name)"))
            }
            result = type == "Void" || type == "()" ? nil : type
        }
        return .success(ExportSignature(name: name, parameters: parameters, result: result))
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Splits on commas that are not inside <...>, (...) or [...].
    private static func splitTopLevel(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if "<([".contains(character) { depth += 1 }
            if ">)]".contains(character) { depth -= 1 }
            if character == "," && depth == 0 {
                pieces.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
        }
        pieces.append(current.trimmingCharacters(in: .whitespaces))
        return pieces
    }
}

/// Whether `text` looks like a Swift type a gate can carry (`Int32`,
/// `UnsafeMutablePointer<CChar>`, `FlexOS.FlexOSExport`, `Int?`): it is pasted into the
/// generated gates, so nothing else (no newline, brace, parenthesis or quote) may pass.
func isTypeName(_ text: String) -> Bool {
    !text.isEmpty && (text.first == "_" || text.first!.isLetter)
        && text.allSatisfy { $0.isASCII && ($0 == "_" || $0.isLetter || $0.isNumber || "<>.,? []".contains($0)) }
}

/// A library of the guest: a folder with Swift sources and a library.yaml that names
/// what it exports across gates and which libraries it calls.
public struct LibraryDescriptor: Equatable, Sendable {
    public static let fileName = "library.yaml"

    public var name: String
    public var summary: String
    public var directory: String
    public var sources: [String]
    /// Libraries this one calls through gates; they are built into the same image.
    public var uses: [String]
    public var exports: [ExportSignature]
    /// Devices the monitor provides to this library's compartment alone (`net`).
    public var devices: [String] = []

    /// The C symbol of export `export`: the function the library defines with @_cdecl.
    public func symbol(of export: ExportSignature) -> String { "\(name)_\(export.name)" }

    /// Reads `directory/library.yaml` and lists the Swift sources beside it.
    public static func load(directory: String) throws(ToolchainError) -> LibraryDescriptor {
        let path = directory + "/" + fileName
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ToolchainError.badLibraryDescriptor(path: path, line: nil, "cannot be read")
        }
        func fail(_ node: Node?, _ message: String) -> ToolchainError {
            .badLibraryDescriptor(path: path, line: node?.mark?.line, message)
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw fail(nil, "is not valid YAML: \(error)") }
        guard let mapping = root?.mapping else {
            throw fail(root, "must be a mapping with name, description, uses and exports")
        }
        for key in mapping.keys where !["name", "description", "uses", "exports", "devices"].contains(key.string ?? "")
        {
            throw fail(key, "unknown key `\(key.string ?? "?")` (expected name, description, uses, exports, devices)")
        }
        let folder = (directory as NSString).lastPathComponent
        let name = mapping["name"]?.string ?? folder
        guard name == folder else {
            throw fail(mapping["name"], "names the library \(name), but its folder is \(folder); they must agree")
        }
        guard isIdentifier(name), name != "runtime", name != "FlexOS" else {
            throw fail(
                mapping["name"], "\(name) cannot name a library: use letters, digits and _ (and not runtime or FlexOS)")
        }
        var exports: [ExportSignature] = []
        for node in mapping["exports"]?.sequence ?? [] {
            guard let text = node.scalar?.string else {
                throw fail(
                    node,
                    "write each export as a quoted string, e.g. - \"lib_func(buffer: UnsafeMutablePointer<CChar>) -> Int32\""
                )
            }
            switch ExportSignature.parse(text) {
            case .success(let export):
                guard !exports.contains(where: { $0.name == export.name }) else {
                    throw fail(node, "export \(export.name) is declared twice")
                }
                exports.append(export)
            case .failure(let error): throw fail(node, error.description)
            }
        }
        let uses = (mapping["uses"]?.sequence ?? []).compactMap(\.string)
        var devices: [String] = []
        for node in mapping["devices"]?.sequence ?? [] {
            guard let kind = node.string, DeviceKind.named(kind) != nil, !devices.contains(kind) else {
                throw fail(
                    node,
                    "devices lists `\(node.string ?? "?")`; the monitor provides: \(DeviceKind.names), each once"
                )
            }
            devices.append(kind)
        }
        let sources = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".swift") }.sorted().map { directory + "/" + $0 }
        guard !sources.isEmpty else { throw fail(nil, "the library has no .swift source beside its library.yaml") }
        return LibraryDescriptor(
            name: name, summary: mapping["description"]?.string ?? "", directory: directory,
            sources: sources, uses: uses, exports: exports, devices: devices)
    }
}
