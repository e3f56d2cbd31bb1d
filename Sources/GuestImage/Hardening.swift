/// A hardening option a compartment's libraries can be built with; the manifest carries
/// each compartment's, and the layout and the runtime act on guard-pages and heap-checks.
public enum Hardening: String, CaseIterable, Sendable, Codable {
    /// Swift's stack protector: a canary checked before each protected function returns.
    case stackProtector = "stack-protector"
    /// Bounds and overflow checks: `-O` instead of `-Ounchecked`. Covers array and
    /// pointer-buffer bounds, integer overflow and failed preconditions.
    case boundsChecks = "bounds-checks"
    /// Swift's dynamic exclusivity enforcement (`-enforce-exclusivity=checked`): two
    /// overlapping accesses to one variable, one of them a modification, end the image
    /// set with a report naming both.
    case exclusivityChecks = "exclusivity-checks"
    /// Unmapped pages between the stack and the heap and after the heap, so that running
    /// off either end of the heap faults and is reported as a heap overflow. (Every stack
    /// has an unmapped page below it whatever the hardening: a stack overflow is always
    /// reported as one.)
    case guardPages = "guard-pages"
    /// The compartment's allocator puts a canary after each block, records its allocation
    /// site and poisons freed memory: an overflow, a double free or a use after free is
    /// reported when the block is freed or its memory allocated again.
    case heapChecks = "heap-checks"

    /// A short name for tables and pictures.
    public var shortName: String {
        switch self {
        case .stackProtector: "sp"
        case .boundsChecks: "bc"
        case .exclusivityChecks: "ex"
        case .guardPages: "gp"
        case .heapChecks: "hc"
        }
    }
}
