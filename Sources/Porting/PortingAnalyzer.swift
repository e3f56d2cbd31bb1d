import SwiftSyntax

/// Reads one library against the others and makes its porting plan.
public struct PortingAnalyzer {
    public let target: LibrarySource
    public let others: [LibrarySource]

    public init(target: LibrarySource, others: [LibrarySource]) {
        self.target = target
        self.others = others.filter { $0.name != target.name }
    }

    /// Which library defines each function the target does not define itself.
    private var foreignFunctions: [String: LibrarySource] {
        var result: [String: LibrarySource] = [:]
        for library in others {
            for name in library.functions.keys where !target.declaredNames.contains(name) && result[name] == nil {
                result[name] = library
            }
        }
        return result
    }

    public func plan() -> PortingPlan {
        var plan = PortingPlan(
            library: target.name, folder: target.descriptor.directory,
            currentUses: target.descriptor.uses, proposedUses: [],
            currentExports: target.descriptor.exports.map(\.description), proposedExports: [])
        // Exports handed out as `Exports.name` anywhere are callbacks, whichever call they reach.
        var callbacks: [String] = target.exportReferences.compactMap { target.exports[$0]?.name }.sorted()
        let foreign = foreignFunctions
        let libraryNames = Set(others.map(\.name))
        let handDeclared = target.handDeclaredExports(of: others)
        for (declaration, library, export) in handDeclared.values.sorted(by: {
            $0.declaration.name < $1.declaration.name
        }) {
            let file = target.files[declaration.file]
            plan.handDeclarations.append(
                PortingPlan.HandDeclaration(
                    file: file.path, line: file.line(of: declaration.declaration), name: declaration.name,
                    symbol: declaration.symbol, gate: "\(library.name).\(export)"))
            plan.edits[file.path, default: []].append(.removing(declaration.declaration))
        }
        for file in target.files {
            let finder = CrossCallFinder(
                target: target, foreign: foreign, libraryNames: libraryNames, handDeclared: handDeclared)
            finder.walk(file.tree)
            for call in finder.calls {
                if !plan.proposedUses.contains(call.library.name) { plan.proposedUses.append(call.library.name) }
                let rewrite = CallRewrite(call: call, target: target, file: file)
                for name in rewrite.callbacks where !callbacks.contains(name) { callbacks.append(name) }
                plan.sharedData += rewrite.sharedData
                plan.edits[file.path, default: []] += rewrite.edits
                if let summary = rewrite.summary { plan.calls.append(summary) }
            }
        }
        plan.usedBy = usedBy(callbacks: callbacks)
        let exported = target.functions.values.filter { plan.usedBy[$0.exportName] != nil }
            .sorted { ($0.file, $0.declaration.position) < ($1.file, $1.declaration.position) }
        for function in exported {
            let export = ExportedFunction(function: function, library: target)
            plan.proposedExports.append(export.signature)
            plan.callbackParameters += export.callbackParameters.map { "\(function.exportName)(\($0))" }
            plan.edits[target.files[function.file].path, default: []] += export.edits
        }
        GlobalSharing(target: target).add(for: plan.sharedData, into: &plan.edits)
        return plan
    }

    /// This library's functions that others call (directly or through gates) or that it
    /// hands to others as callbacks, and by whom.
    private func usedBy(callbacks: [String]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for name in callbacks {
            result[target.functions[name]?.exportName ?? name] = [target.name + " (as a callback)"]
        }
        for library in others {
            var foreign: [String: LibrarySource] = [:]
            for name in target.functions.keys where !library.declaredNames.contains(name) { foreign[name] = target }
            let handDeclared = library.handDeclaredExports(of: [target])
            for file in library.files {
                let finder = CrossCallFinder(
                    target: library, foreign: foreign, libraryNames: [target.name], handDeclared: handDeclared)
                finder.walk(file.tree)
                for call in finder.calls where !(result[call.export] ?? []).contains(library.name) {
                    result[call.export, default: []].append(library.name)
                }
            }
        }
        return result
    }
}

/// A call from one library into another: `fn(...)` naming a function only the other
/// defines, `library.fn(...)`, the gate of an already ported call, or a call of a function
/// declared by hand with the other library's export symbol, which skips the gate.
struct CrossCall {
    let node: FunctionCallExprSyntax
    let library: LibrarySource
    /// The name the call uses.
    let function: String
    /// The export it reaches, which names its gate.
    let export: String
    let isGate: Bool
}

/// A function one library declares by hand with another library's export symbol, the
/// library whose export it is, and the export's name.
typealias HandDeclaredExport = (declaration: LibrarySource.ExternalDeclaration, library: LibrarySource, export: String)

extension LibrarySource {
    /// Which of this library's hand declarations bind a symbol one of `libraries` exports, by Swift name.
    func handDeclaredExports(of libraries: [LibrarySource]) -> [String: HandDeclaredExport] {
        var result: [String: HandDeclaredExport] = [:]
        for declaration in externalDeclarations.values {
            for library in libraries where library.name != name {
                guard
                    let function = library.functions.values.first(where: {
                        LibrarySource.cSymbol(of: $0.declaration) == declaration.symbol
                    })
                else { continue }
                result[declaration.name] = (declaration, library, function.exportName)
            }
        }
        return result
    }
}

final class CrossCallFinder: SyntaxVisitor {
    let target: LibrarySource
    let foreign: [String: LibrarySource]
    let libraryNames: Set<String>
    /// The target's hand declarations that bind another library's export, by Swift name.
    let handDeclared: [String: HandDeclaredExport]
    var calls: [CrossCall] = []

    init(
        target: LibrarySource, foreign: [String: LibrarySource], libraryNames: Set<String>,
        handDeclared: [String: HandDeclaredExport]
    ) {
        self.target = target
        self.foreign = foreign
        self.libraryNames = libraryNames
        self.handDeclared = handDeclared
        super.init(viewMode: .sourceAccurate)
    }

    override func visit(_ node: FunctionCallExprSyntax) -> SyntaxVisitorContinueKind {
        if let reference = node.calledExpression.as(DeclReferenceExprSyntax.self),
            let bound = handDeclared[reference.baseName.text],
            !References.isBoundLocally(reference.baseName.text, around: node)
        {
            calls.append(
                CrossCall(
                    node: node, library: bound.library, function: reference.baseName.text, export: bound.export,
                    isGate: false))
        } else if let reference = node.calledExpression.as(DeclReferenceExprSyntax.self),
            let library = foreign[reference.baseName.text],
            !References.isBoundLocally(reference.baseName.text, around: node)
        {
            let name = reference.baseName.text
            calls.append(
                CrossCall(
                    node: node, library: library, function: name, export: library.functions[name]?.exportName ?? name,
                    isGate: false))
        } else if let member = node.calledExpression.as(MemberAccessExprSyntax.self),
            let base = member.base?.as(DeclReferenceExprSyntax.self), libraryNames.contains(base.baseName.text),
            let library = foreign.values.first(where: { $0.name == base.baseName.text }),
            library.exports[member.declName.baseName.text] != nil
        {
            let name = member.declName.baseName.text
            calls.append(CrossCall(node: node, library: library, function: name, export: name, isGate: true))
        }
        return .visitChildren
    }
}
