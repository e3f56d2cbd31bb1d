import GuestImage

/// A named range of guest addresses: what fault reports and `inspect` call a piece of memory.
public struct GuestRegion: Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case bootInfo = "boot info"
        case console
        case runtime
        case library
        case stackGuard = "stack guard"
        /// Unmapped pages around a heap (hardening guard-pages).
        case heapGuard = "heap guard"
        case stack
        case heap
        case sharedData = "shared data"
        case gateBlock = "gate block"
        case sharedStackGuard = "shared stack guard"
        case sharedStack = "shared stack"
        case sharedHeap = "shared heap"
        case hypercallWindow = "hypercall window"
        /// A device's memory (`detail` names it: "network device").
        case device
    }

    public let kind: Kind
    public let range: Range<UInt64>
    public let permissions: PagePermissions
    /// The compartment whose private memory this is; nil for what every compartment maps.
    public let compartment: String?
    /// The library this range belongs to, for library sections.
    public let library: String?
    /// The section or detail, e.g. ".text".
    public let detail: String?
    /// The protection key its pages carry (intel-mpk: its compartment's; 0 otherwise).
    public let protectionKey: UInt8

    public init(
        kind: Kind, range: Range<UInt64>, permissions: PagePermissions, compartment: String? = nil,
        library: String? = nil, detail: String? = nil,
        protectionKey: UInt8 = 0
    ) {
        self.kind = kind
        self.range = range
        self.permissions = permissions
        self.compartment = compartment
        self.library = library
        self.detail = detail
        self.protectionKey = protectionKey
    }

    public var size: UInt64 { range.upperBound - range.lowerBound }

    /// Whether the region lives in the shared area, mapped in every compartment.
    public var isShared: Bool {
        switch kind {
        case .sharedData, .gateBlock, .sharedStack, .sharedHeap, .sharedStackGuard: return true
        default: return false
        }
    }

    /// How a person names this region, e.g. "the stack of compartment comp1" or
    /// "section .data of library flexosexample (compartment comp2)".
    public var name: String {
        switch kind {
        case .library:
            return "section \(detail ?? "?") of library \(library ?? "?")"
                + (compartment.map { " (compartment \($0))" } ?? "")
        case .runtime:
            return "runtime section \(detail ?? "?")"
        case .gateBlock:
            return "the gate block (\(detail ?? "?"))"
        case .stack, .heap, .stackGuard, .heapGuard:
            return "the private \(kind.rawValue) of compartment \(compartment ?? "?")"
        case .sharedStack, .sharedStackGuard:
            return "the \(kind.rawValue) of compartment \(compartment ?? "?")"
        case .device:
            return "the \(detail ?? "device") of compartment \(compartment ?? "?")"
        default:
            return "the \(kind.rawValue)" + (compartment.map { " of compartment \($0)" } ?? "")
        }
    }
}
