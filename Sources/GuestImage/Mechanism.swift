import CFlexOSABI

/// How the compartments of an image set are kept apart: the name a conformation and a
/// manifest use. What each mechanism *is* lives in one value per mechanism, `isolation`:
/// the layout, the engines and `flexosctl hosts` ask it rather than comparing names, and the
/// toolchain's gates come from its `GateScheme` (Toolchain).
public enum Mechanism: String, Codable, Sendable, CaseIterable {
    /// No isolation: one VM, gates are direct calls.
    case fcalls
    /// One VM per compartment; gates are RPCs through shared memory.
    case vmept
    /// One VM, one protection key per compartment.
    case intelMPK = "intel-mpk"

    /// The mechanism a config file names: its raw value, or intel-pku (the seed's other name for intel-mpk).
    public init?(configName name: String) {
        self.init(rawValue: name == "intel-pku" ? Mechanism.intelMPK.rawValue : name)
    }

    /// What this mechanism is made of.
    public var isolation: any Isolation {
        switch self {
        case .fcalls: FunctionCalls()
        case .vmept: VMPerCompartment()
        case .intelMPK: ProtectionKeys()
        }
    }
}

/// What one isolation mechanism supplies to the rest of FlexOS: how compartments map to VMs,
/// how the compartments sharing a VM are told apart, how many it can keep apart, and what a
/// host's KVM must offer to enforce it. A new mechanism is a new conforming type (and its
/// gate scheme in the toolchain), not a new branch in the layout and the engines.
public protocol Isolation: Sendable {
    var mechanism: Mechanism { get }
    /// Each compartment in a VM of its own (and so no single-VM engine can run it).
    var vmPerCompartment: Bool { get }
    /// The compartments of its one VM each get a stack, a heap and a protection key of their own.
    var keysCompartments: Bool { get }
    /// The most compartments it can keep apart, and why; nil when there is no limit.
    var compartmentLimit: (count: Int, reason: String)? { get }
    /// A KVM must offer protection keys (PKU) to enforce it; otherwise only emulation can.
    var needsProtectionKeys: Bool { get }
    /// What it guarantees, in a few words (`flexosctl hosts`).
    var summary: String { get }
    /// How far apart the private areas of compartments are (flexos_abi.h), and so the most
    /// private memory a compartment can have.
    var areaStride: UInt64 { get }
}

extension Isolation {
    public var vmPerCompartment: Bool { false }
    public var keysCompartments: Bool { false }
    public var compartmentLimit: (count: Int, reason: String)? { nil }
    public var needsProtectionKeys: Bool { false }
    /// One private area per VM: 16 GiB apart, so a keyspace can be sized to the compartment.
    public var areaStride: UInt64 { FLEXOS_VM_AREA_STRIDE }

    /// The VM (0-based) that runs compartment number `index` of a conformation.
    public func machine(ofCompartment index: Int) -> Int { vmPerCompartment ? index : 0 }

    /// The VMs an image set of `compartments` needs, each named, with the compartments it runs.
    public func machines(of compartments: [String]) -> [(name: String, members: [String])] {
        vmPerCompartment ? compartments.map { ($0, [$0]) } : [(compartments.joined(separator: "+"), compartments)]
    }
}

/// fcalls: nothing between compartments; a gate is a direct call.
public struct FunctionCalls: Isolation {
    public var mechanism: Mechanism { .fcalls }
    public var summary: String { "one VM, no isolation between compartments" }
}

/// vmept: a VM per compartment, each mapping only its own libraries and the shared area.
public struct VMPerCompartment: Isolation {
    public var mechanism: Mechanism { .vmept }
    public var vmPerCompartment: Bool { true }
    public var summary: String { "one VM per compartment, gates through shared memory" }
}

/// intel-mpk: one VM whose compartments' pages carry a protection key each; gates switch PKRU.
public struct ProtectionKeys: Isolation {
    public var mechanism: Mechanism { .intelMPK }
    public var keysCompartments: Bool { true }
    /// Keys are 4 bits and key 0 is the one every compartment shares.
    public var compartmentLimit: (count: Int, reason: String)? { (15, "intel-mpk, which has 15 keys for compartments") }
    public var needsProtectionKeys: Bool { true }
    /// The areas share one VM, whose RAM under QEMU reaches the last of them, and the gates
    /// carry each compartment's stack address from the build: 1 GiB apart.
    public var areaStride: UInt64 { FLEXOS_COMPARTMENT_AREA_STRIDE }
    public var summary: String { "one VM, compartments keyed by PKU" }
}
