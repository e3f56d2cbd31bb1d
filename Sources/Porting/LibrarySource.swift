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

    public var name: String { descriptor.name }

    /// Whether global `name` lives in the shared data (`@section(".data_shared")`).
    func isShared(_ name: String) -> Bool {
        globals[name]?.declaration.attributes.contains { $0.as(AttributeSyntax.self)?.code.contains(".data_shared") == true } ?? false
    }

    public init(folder: String) throws(PortingError) {
        do { descriptor = try LibraryDescriptor.load(directory: folder) } catch { throw PortingError.library(folder, "\(error)") }
        var files: [File] = []
        for path in descriptor.sources {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw PortingError.library(path, "cannot be read as UTF-8 text") }
            let tree = Parser.parse(source: text)
            files.append(File(path: path, text: text, tree: tree, locations: SourceLocationConverter(fileName: path, tree: tree)))
        }
        var functions: [String: Function] = [:]
        var globals: [String: (declaration: VariableDeclSyntax, file: Int)] = [:]
        var declared = Set<String>()
        let name = descriptor.name
        for (index, file) in files.enumerated() {
            declared.formUnion(DeclaredFunctions(file.tree).names)
            for item in file.tree.statements {
                if let function = item.item.as(FunctionDeclSyntax.self) {
                    functions[function.name.text] = Function(name: function.name.text, exportName: LibrarySource.exportName(of: function, library: name),
                                                             declaration: function, file: index)
                } else if let variable = item.item.as(VariableDeclSyntax.self) {
                    for binding in variable.bindings {
                        if let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text { globals[name] = (variable, index) }
                    }
                }
            }
        }
        self.files = files
        self.functions = functions
        exports = Dictionary(functions.values.map { ($0.exportName, $0) }, uniquingKeysWith: { first, _ in first })
        declaredNames = declared
        self.globals = globals
    }

    /// `lib_func` for `@_cdecl("flexosexample_lib_func") func libFunc`; the Swift name otherwise.
    static func exportName(of function: FunctionDeclSyntax, library: String) -> String {
        guard let symbol = cSymbol(of: function), symbol.hasPrefix(library + "_") else { return function.name.text }
        return String(symbol.dropFirst(library.count + 1))
    }

    /// The symbol `@_cdecl("...")` gives a function, if it has one.
    static func cSymbol(of function: FunctionDeclSyntax) -> String? {
        for attribute in function.attributes {
            guard let attribute = attribute.as(AttributeSyntax.self), attribute.attributeName.trimmedDescription == "_cdecl" else { continue }
            return attribute.arguments?.trimmedDescription.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
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
