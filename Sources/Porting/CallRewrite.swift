import SwiftSyntax

/// How one cross-library call is ported: its callee becomes the other library's gate, a
/// function of this library passed along becomes `Exports.name` (an export used as a
/// callback), and memory it hands over that the other compartment cannot reach is flagged,
/// with the fix that applies, and fixed where the fix is mechanical.
struct CallRewrite {
    private(set) var edits: [SourceEdit] = []
    private(set) var callbacks: [String] = []
    private(set) var sharedData: [PortingPlan.SharedData] = []
    private(set) var summary: PortingPlan.Call?

    /// The standard library's calls that hand a closure a pointer to a variable.
    static let pointerScopes: Set<String> = [
        "withUnsafeMutablePointer", "withUnsafePointer", "withUnsafeMutableBytes", "withUnsafeBytes"
    ]

    init(call: CrossCall, target: LibrarySource, file: LibrarySource.File) {
        let gate = "\(call.library.name).\(call.export)"
        var wrappers: [String] = []
        for argument in call.node.arguments {
            let expression = argument.expression
            if let reference = expression.as(DeclReferenceExprSyntax.self),
                let function = target.functions[reference.baseName.text],
                !References.isBoundLocally(function.name, around: argument)
            {
                callbacks.append(function.name)
                edits.append(.replacing(expression, with: "Exports." + function.exportName))
            } else if let member = expression.as(MemberAccessExprSyntax.self), member.base?.code == "Exports",
                let function = target.exports[member.declName.baseName.text]
            {
                callbacks.append(function.name)  // ported already
            } else if let inOut = expression.as(InOutExprSyntax.self),
                let variable = inOut.expression.as(DeclReferenceExprSyntax.self)
            {
                let name = variable.baseName.text
                if target.globals[name] != nil {
                    if !target.isShared(name) { flag(name, .global, call: call, gate: gate, file: file, at: argument) }
                } else {
                    flag(
                        name, .stack, call: call, gate: gate, file: file, at: argument,
                        fix:
                            "shared stack: SharedMemory.withUnsafeMutablePointer(to: &\(name)) copies it there for the call"
                    )
                    wrappers.append("SharedMemory.withUnsafeMutablePointer(to: &\(name)) { \(name) in ")
                    edits.append(.replacing(expression, with: name))
                }
            } else {
                for reference in References.in(expression) {
                    trace(reference, call: call, gate: gate, target: target, file: file)
                }
            }
        }
        let callee = wrappers.joined() + (call.isGate ? call.node.calledExpression.code : gate)
        if !call.isGate || !wrappers.isEmpty { edits.append(.replacing(call.node.calledExpression, with: callee)) }
        if !wrappers.isEmpty {
            edits.append(
                .inserting(
                    String(repeating: " }", count: wrappers.count), at: call.node.endPositionBeforeTrailingTrivia))
        }
        let own = edits.filter {
            call.node.positionAfterSkippingLeadingTrivia
                .utf8Offset...call.node.endPositionBeforeTrailingTrivia.utf8Offset ~= $0.range.lowerBound
        }
        if !own.isEmpty {
            let start = call.node.positionAfterSkippingLeadingTrivia.utf8Offset
            let shifted = own.map {
                SourceEdit(
                    range: ($0.range.lowerBound - start)..<($0.range.upperBound - start), replacement: $0.replacement)
            }
            summary = PortingPlan.Call(
                file: file.path, line: file.line(of: call.node), library: call.library.name, function: call.function,
                before: call.node.code, after: SourceEdit.apply(shifted, to: call.node.code))
        }
    }

    /// Where a pointer handed to the other library comes from: a closure parameter of
    /// `withUnsafeMutablePointer(to: &x)` (x's memory), or `UnsafeMutablePointer.allocate`.
    private mutating func trace(
        _ reference: DeclReferenceExprSyntax, call: CrossCall, gate: String, target: LibrarySource,
        file: LibrarySource.File
    ) {
        let name = reference.baseName.text
        if let scope = References.pointerScope(binding: name, around: call.node), let variable = scope.variable {
            // SharedMemory.with...: shared already
            guard scope.call.calledExpression.is(DeclReferenceExprSyntax.self) else { return }
            if target.globals[variable] != nil {
                if !target.isShared(variable) {
                    flag(variable, .global, call: call, gate: gate, file: file, at: reference)
                }
            } else {
                let callee = scope.call.calledExpression.code
                let mechanical = callee == "withUnsafeMutablePointer" || callee == "withUnsafePointer"
                flag(
                    variable, .stack, call: call, gate: gate, file: file, at: reference,
                    fix: "shared stack: SharedMemory.withUnsafeMutablePointer(to: &\(variable)) instead of \(callee)",
                    automatic: mechanical)
                if mechanical {
                    edits.append(.replacing(scope.call.calledExpression, with: "SharedMemory.withUnsafeMutablePointer"))
                }
            }
        } else if References.isPrivateAllocation(name, around: call.node) {
            flag(
                name, .heap, call: call, gate: gate, file: file, at: reference,
                fix: "shared heap: allocate it with SharedMemory.allocate(T.self, count:)", automatic: false)
        }
    }

    private mutating func flag(
        _ name: String, _ kind: PortingPlan.SharedData.Kind, call: CrossCall, gate: String, file: LibrarySource.File,
        at node: some SyntaxProtocol,
        fix: String = "a shared static: @section(\".data_shared\") @used on its declaration", automatic: Bool = true
    ) {
        sharedData.append(
            PortingPlan.SharedData(
                file: file.path, line: file.line(of: node), name: name, kind: kind, passedTo: gate, fix: fix,
                automatic: automatic))
    }
}

/// Questions about names in a function body, answered from the syntax tree alone.
enum References {
    /// The variable names an expression reads.
    static func `in`(_ expression: ExprSyntax) -> [DeclReferenceExprSyntax] {
        final class Collector: SyntaxVisitor {
            var found: [DeclReferenceExprSyntax] = []
            override func visit(_ node: DeclReferenceExprSyntax) -> SyntaxVisitorContinueKind {
                found.append(node)
                return .skipChildren
            }
        }
        let collector = Collector(viewMode: .sourceAccurate)
        collector.walk(expression)
        return collector.found
    }

    /// The `withUnsafe...Pointer(to: &variable) { name in ... }` around `node` whose
    /// closure binds `name`.
    static func pointerScope(binding name: String, around node: some SyntaxProtocol) -> (
        call: FunctionCallExprSyntax, variable: String?
    )? {
        var current = Syntax(node).parent
        while let syntax = current {
            if let closure = syntax.as(ClosureExprSyntax.self), parameters(of: closure).contains(name),
                let call = closure.parent?.as(FunctionCallExprSyntax.self)
                    ?? closure.parent?.parent?.parent?.as(FunctionCallExprSyntax.self),
                CallRewrite.pointerScopes.contains(
                    call.calledExpression.as(MemberAccessExprSyntax.self)?.declName.baseName.text
                        ?? call.calledExpression.code)
            {
                let variable = call.arguments.first?.expression.as(InOutExprSyntax.self)?.expression.as(
                    DeclReferenceExprSyntax.self)?.baseName.text
                return (call, variable)
            }
            current = syntax.parent
        }
        return nil
    }

    /// Whether `name` is a local bound to `UnsafeMutablePointer...allocate(...)` (private
    /// heap memory) in a body around `node`.
    static func isPrivateAllocation(_ name: String, around node: some SyntaxProtocol) -> Bool {
        var current = Syntax(node).parent
        while let syntax = current {
            if let block = syntax.as(CodeBlockItemListSyntax.self), let binding = binding(name, in: block) {
                let value = binding.initializer?.value.code ?? ""
                return value.contains(".allocate(") && !value.contains("SharedMemory.")
            }
            current = syntax.parent
        }
        return false
    }

    /// Whether `name` at `node` is a parameter or local of an enclosing function or
    /// closure, rather than a top-level function.
    static func isBoundLocally(_ name: String, around node: some SyntaxProtocol) -> Bool {
        var current = Syntax(node).parent
        while let syntax = current {
            if let function = syntax.as(FunctionDeclSyntax.self),
                function.signature.parameterClause.parameters.contains(where: {
                    ($0.secondName ?? $0.firstName).text == name
                })
            {
                return true
            }
            if let closure = syntax.as(ClosureExprSyntax.self), parameters(of: closure).contains(name) { return true }
            if let block = syntax.as(CodeBlockItemListSyntax.self), binding(name, in: block) != nil { return true }
            current = syntax.parent
        }
        return false
    }

    /// The `let` or `var` of `block` that binds `name`.
    private static func binding(_ name: String, in block: CodeBlockItemListSyntax) -> PatternBindingSyntax? {
        for item in block {
            guard let variable = item.item.as(VariableDeclSyntax.self) else { continue }
            if let binding = variable.bindings.first(where: {
                $0.pattern.as(IdentifierPatternSyntax.self)?.identifier.text == name
            }) {
                return binding
            }
        }
        return nil
    }

    private static func parameters(of closure: ClosureExprSyntax) -> [String] {
        guard let clause = closure.signature?.parameterClause else { return [] }
        if let shorthand = clause.as(ClosureShorthandParameterListSyntax.self) { return shorthand.map(\.name.text) }
        if let full = clause.as(ClosureParameterClauseSyntax.self) {
            return full.parameters.map { ($0.secondName ?? $0.firstName).text }
        }
        return []
    }
}
