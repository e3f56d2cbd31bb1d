import SwiftSyntax

/// A function of the library that other compartments call: its export signature for
/// library.yaml, and the edits that make it one (its C symbol, and function parameters
/// turned into FlexOSExport callbacks called with `.call`).
struct ExportedFunction {
    let signature: String
    let callbackParameters: [String]
    let edits: [SourceEdit]

    init(function: LibrarySource.Function, library: LibrarySource) {
        let declaration = function.declaration
        var parameters: [String] = []
        var callbacks: [String] = []
        var edits: [SourceEdit] = []
        for parameter in declaration.signature.parameterClause.parameters {
            let name = (parameter.secondName ?? parameter.firstName).text
            if ExportedFunction.isFunctionType(parameter.type) {
                callbacks.append(name)
                edits.append(.replacing(parameter.type, with: "FlexOSExport"))
                parameters.append("\(name): FlexOSExport")
            } else {
                parameters.append("\(name): \(parameter.type.code)")
            }
        }
        if let body = declaration.body {
            for call in CallsOf(names: Set(callbacks), in: body).found {
                edits.append(.replacing(call.calledExpression, with: call.calledExpression.code + ".call"))
                for argument in call.arguments where !argument.expression.is(IntegerLiteralExprSyntax.self) {
                    edits.append(
                        .replacing(argument.expression, with: "UInt64(truncatingIfNeeded: \(argument.expression.code))")
                    )
                }
            }
        }
        if LibrarySource.cSymbol(of: declaration) == nil {
            let indent = String(
                repeating: " ",
                count: max(0, declaration.startLocation(converter: library.files[function.file].locations).column - 1))
            edits.append(
                .inserting(
                    "@_cdecl(\"\(library.name)_\(function.name)\")\n" + indent,
                    at: declaration.positionAfterSkippingLeadingTrivia))
        }
        let result = declaration.signature.returnClause.map(\.type.code).flatMap {
            $0 == "Void" || $0 == "()" ? nil : $0
        }
        signature = "\(function.exportName)(\(parameters.joined(separator: ", ")))" + (result.map { " -> \($0)" } ?? "")
        callbackParameters = callbacks
        self.edits = edits
    }

    static func isFunctionType(_ type: TypeSyntax) -> Bool {
        if type.is(FunctionTypeSyntax.self) { return true }
        if let attributed = type.as(AttributedTypeSyntax.self) { return isFunctionType(attributed.baseType) }
        return false
    }
}

/// The calls in a body of functions named in `names`.
final class CallsOf: SyntaxVisitor {
    let names: Set<String>
    var found: [FunctionCallExprSyntax] = []

    init(names: Set<String>, in body: some SyntaxProtocol) {
        self.names = names
        super.init(viewMode: .sourceAccurate)
        if !names.isEmpty { walk(body) }
    }

    override func visit(_ node: FunctionCallExprSyntax) -> SyntaxVisitorContinueKind {
        if let reference = node.calledExpression.as(DeclReferenceExprSyntax.self),
            names.contains(reference.baseName.text)
        {
            found.append(node)
        }
        return .visitChildren
    }
}

/// The shared-static fix: `@section(".data_shared") @used` on each global the library
/// hands over, once per global, unless it has it.
struct GlobalSharing {
    let target: LibrarySource

    func add(for data: [PortingPlan.SharedData], into edits: inout [String: [SourceEdit]]) {
        var done = Set<String>()
        for item in data where item.kind == .global && done.insert(item.name).inserted {
            guard let (declaration, fileIndex) = target.globals[item.name], !target.isShared(item.name) else {
                continue
            }
            let file = target.files[fileIndex]
            let indent = String(
                repeating: " ", count: max(0, declaration.startLocation(converter: file.locations).column - 1))
            edits[file.path, default: []].append(
                .inserting(
                    "@section(\".data_shared\") @used\n" + indent, at: declaration.positionAfterSkippingLeadingTrivia))
        }
    }
}
