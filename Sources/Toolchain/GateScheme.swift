import GuestImage

/// What the toolchain generates for one mechanism: the symbol a library calls for an
/// export, the export table, the gate stubs, link-time aliases and objects of its own, and
/// the check of the linked image. `GateGenerator` and `ImageBuilder` ask it; they do not
/// compare mechanism names.
protocol GateScheme {
    var plan: BuildPlan { get }

    /// The symbol compartment number `caller` calls to reach `export`.
    func gateSymbol(caller: Int, export: BuildPlan.Export) -> String

    /// The export table: `flexos_dispatch(index, a0...a5)`.
    func dispatch(parameters: String, arguments: [String]) -> String

    /// Gate stubs that go into the generated glue (vmept's RPCs).
    func stubs() -> String

    /// Lines of the linker script's SECTIONS (fcalls: each gate an alias of its export).
    func linkerAliases() -> String

    /// Builds objects of its own into `objects` (intel-mpk's gates, and each compartment's
    /// stack word, added to that compartment's first library in `linked`); returns the
    /// objects to link beside the runtime.
    func buildObjects(
        with builder: ImageBuilder, into linked: inout [String: [String]], generated: String, objects: String
    )
        throws(ToolchainError) -> [String]

    /// Refuses a linked image the mechanism cannot keep safe; may remove it.
    func check(image path: String) throws(ToolchainError)
}

extension GateScheme {
    func gateSymbol(caller: Int, export: BuildPlan.Export) -> String { GateGenerator.gateSymbol(export) }
    func dispatch(parameters: String, arguments: [String]) -> String {
        GateGenerator.directDispatch(plan.exports, parameters: parameters, arguments: arguments)
    }
    func stubs() -> String { "" }
    func linkerAliases() -> String { "" }
    func buildObjects(
        with builder: ImageBuilder, into linked: inout [String: [String]], generated: String, objects: String
    )
        throws(ToolchainError) -> [String]
    { [] }
    func check(image path: String) throws(ToolchainError) {}
}

extension BuildPlan {
    /// The gate scheme of the plan's mechanism.
    var gates: any GateScheme {
        switch mechanism {
        case .fcalls: DirectCallGates(plan: self)
        case .vmept: RemoteCallGates(plan: self)
        case .intelMPK: ProtectionKeyGates(plan: self)
        }
    }
}

/// fcalls: a gate is its export under another name, so a gate call is a plain call.
struct DirectCallGates: GateScheme {
    let plan: BuildPlan

    func linkerAliases() -> String {
        plan.exports.map { "  \(GateGenerator.gateSymbol($0)) = \($0.symbol);\n" }.joined()
    }
}

/// vmept: a gate is an RPC, a request in the pair's channel of the gate block (`Gates.call`).
struct RemoteCallGates: GateScheme {
    let plan: BuildPlan

    func stubs() -> String {
        var text = ""
        for export in plan.exports {
            let count = export.signature.parameters.count
            let passed = (0..<6).map { $0 < count ? "a\($0)" : "0" }.joined(separator: ", ")
            let own = (0..<count).map { "_ a\($0): UInt64" }.joined(separator: ", ")
            text += "\n/// Gate to \(export.library.name).\(export.signature.name): an RPC to its compartment.\n"
            text +=
                "@_cdecl(\"\(GateGenerator.gateSymbol(export))\")\npublic func gate_\(export.index)(\(own)) -> UInt64 {\n"
            text += "    Gates.call(export: \(export.index), \(passed))\n}\n"
        }
        return text
    }
}
