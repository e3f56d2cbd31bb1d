import Foundation
import SwiftParser
import SwiftSyntax
import Toolchain

/// One library as the porting helper reads it: its library.yaml, and each Swift file
/// parsed, with the top-level functions and variables it defines.
public struct LibrarySource {
    public struct File {
        public let path: String
        public let text: String
        public let tree: SourceFileSyntax
        let locations: SourceLocationConverter

        /// The 1-based line of `node` in this file.
        func line(of node: some SyntaxProtocol) -> Int {
            node.startLocation(converter: locations).line
        }
    }

    /// A top-level function: what other libraries may call.
    public struct Function {
        /// Its Swift name, which direct calls use.
        public let name: String
        /// The name its export has (and its gate): from its `@_cdecl("library_name")`, else its Swift name.
        public let exportName: String
        public let declaration: FunctionDeclSyntax
        public let file: Int
    }

    /// A function declared by hand with another symbol's name and no body
    /// (`@_extern(c, "symbol")` or `@_silgen_name("symbol")`): if the symbol is another
    /// library's export, its calls skip that library's gate.
    public struct ExternalDeclaration {
        public let name: String
        public let symbol: String
        public let declaration: FunctionDeclSyntax
        public let file: Int
    }

    public let descriptor: LibraryDescriptor
    public let files: [File]
    /// Top-level functions by Swift name.
    public let functions: [String: Function]
    /// Top-level functions by export name (what gate calls `library.name(...)` use).
    public let exports: [String: Function]
    /// Every function name declared anywhere in the library, methods included: a call by
    /// such a name is the library's own.
    public let declaredNames: Set<String>
    /// Top-level variables, by name: static data.
    public let globals: [String: (declaration: VariableDeclSyntax, file: Int)]
    /// Functions declared by hand with a symbol of their own, by Swift name.
    public let externalDeclarations: [String: ExternalDeclaration]
    /// The exports this library names as `Exports.name` anywhere: callbacks it hands out.
    public let exportReferences: Set<String>

    public var name: String { descriptor.name }

    /// Whether global `name` lives in the shared data (`@section(".data_shared")`).
    func isShared(_ name: String) -> Bool {
        globals[name]?.declaration.attributes.contains {
            $0.as(AttributeSyntax.self)?.code.contains(".data_shared") == true
        } ?? false
    }

    public init(folder: String) throws(PortingError) {
        do { descriptor = try LibraryDescriptor.load(directory: folder) } catch {
            throw PortingError.library(folder, "\(error)")
        }
        var files: [File] = []
        for path in descriptor.sources {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw PortingError.library(path, "cannot be read as UTF-8 text")
            }
            let depth = LibrarySource.bracketDepth(of: text)
            guard depth <= LibrarySource.maximumBracketDepth else {
                throw PortingError.library(
                    path,
                    "brackets nest \(depth) deep, more than the \(LibrarySource.maximumBracketDepth) the helper reads (swift-syntax's parser takes time exponential in the depth of some nestings, and its stack overflows past a thousand)"
                )
            }
            let tree = Parser.parse(source: text)
            files.append(
                File(path: path, text: text, tree: tree, locations: SourceLocationConverter(fileName: path, tree: tree))
            )
        }
        var functions: [String: Function] = [:]
        var globals: [String: (declaration: VariableDeclSyntax, file: Int)] = [:]
        var declared = Set<String>()
        var externals: [String: ExternalDeclaration] = [:]
        var exportReferences = Set<String>()
        let name = descriptor.name
        for (index, file) in files.enumerated() {
            declared.formUnion(DeclaredFunctions(file.tree).names)
            exportReferences.formUnion(ExportReferences(file.tree).names)
            for item in file.tree.statements {
                if let function = item.item.as(FunctionDeclSyntax.self), function.body == nil,
                    let symbol = LibrarySource.externalSymbol(of: function)
                {
                    externals[function.name.text] = ExternalDeclaration(
                        name: function.name.text, symbol: symbol, declaration: function, file: index)
                } else if let function = item.item.as(FunctionDeclSyntax.self) {
                    functions[function.name.text] = Function(
                        name: function.name.text, exportName: LibrarySource.exportName(of: function, library: name),
                        declaration: function, file: index)
                } else if let variable = item.item.as(VariableDeclSyntax.self) {
                    for binding in variable.bindings {
                        if let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text {
                            globals[name] = (variable, index)
                        }
                    }
                }
            }
        }
        self.files = files
        self.functions = functions
        exports = Dictionary(functions.values.map { ($0.exportName, $0) }, uniquingKeysWith: { first, _ in first })
        declaredNames = declared
        self.globals = globals
        externalDeclarations = externals
        self.exportReferences = exportReferences
    }

    /// How deep ( [ { may nest in a file the helper parses: hand-written code stays far below.
    static let maximumBracketDepth = 20

    /// The deepest nesting of ( [ { in `text`, counted on the bytes (brackets in strings and
    /// comments count too: a bound, not a parse).
    static func bracketDepth(of text: String) -> Int {
        var depth = 0
        var deepest = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(depth - 1, 0)
            default: break
            }
        }
        return deepest
    }

    /// `lib_func` for `@_cdecl("flexosexample_lib_func") func libFunc`; the Swift name otherwise.
    static func exportName(of function: FunctionDeclSyntax, library: String) -> String {
        guard let symbol = cSymbol(of: function), symbol.hasPrefix(library + "_") else { return function.name.text }
        return String(symbol.dropFirst(library.count + 1))
    }

    /// The symbol `@_cdecl("...")` gives a function, if it has one.
    static func cSymbol(of function: FunctionDeclSyntax) -> String? {
        symbolArgument(of: function, attributes: ["_cdecl"])
    }

    /// The symbol a body-less declaration binds: `@_extern(c, "symbol")` or `@_silgen_name("symbol")`.
    static func externalSymbol(of function: FunctionDeclSyntax) -> String? {
        symbolArgument(of: function, attributes: ["_extern", "_silgen_name"])
    }

    /// The string literal among the arguments of the first of `attributes` the function carries.
    private static func symbolArgument(of function: FunctionDeclSyntax, attributes names: Set<String>) -> String? {
        for attribute in function.attributes {
            guard let attribute = attribute.as(AttributeSyntax.self),
                names.contains(attribute.attributeName.trimmedDescription)
            else { continue }
            guard
                let literal = attribute.arguments?.tokens(viewMode: .sourceAccurate).first(where: {
                    $0.tokenKind.isStringSegment
                })
            else { return nil }
            return literal.text
        }
        return nil
    }
}

/// The names of every function declared in a file, at any depth.
final class DeclaredFunctions: SyntaxVisitor {
    var names = Set<String>()

    init(_ tree: SourceFileSyntax) {
        super.init(viewMode: .sourceAccurate)
        walk(tree)
    }

    override func visit(_ node: FunctionDeclSyntax) -> SyntaxVisitorContinueKind {
        names.insert(node.name.text)
        return .visitChildren
    }
}

/// The names `Exports.name` a file mentions: exports the library hands out as callbacks.
final class ExportReferences: SyntaxVisitor {
    var names = Set<String>()

    init(_ tree: SourceFileSyntax) {
        super.init(viewMode: .sourceAccurate)
        walk(tree)
    }

    override func visit(_ node: MemberAccessExprSyntax) -> SyntaxVisitorContinueKind {
        if node.base?.trimmedDescription == "Exports" { names.insert(node.declName.baseName.text) }
        return .visitChildren
    }
}

extension TokenKind {
    var isStringSegment: Bool {
        if case .stringSegment = self { return true }
        return false
    }
}

/// Why the helper cannot do its work.
public enum PortingError: Error, CustomStringConvertible {
    case library(String, String)
    case write(String, String)

    public var description: String {
        switch self {
        case .library(let path, let message): "\(path): \(message)"
        case .write(let path, let message): "\(path): cannot write: \(message)"
        }
    }
}
