import CFlexOSABI

/// The guest address space every FlexOS VM shares, as `flexos_abi.h` defines it.
///
/// Guest-virtual equals guest-physical for everything a guest can touch, so one set of
/// constants serves the linker script (Toolchain), the ELF checks (here) and the page
/// tables and memory slots (Monitor).
public enum GuestLayout {
    public static let pageSize: UInt64 = FLEXOS_PAGE_SIZE
    public static let largePageSize: UInt64 = 0x20_0000

    /// Page tables (and, at its end, the trap area) live here, in a memory slot but never
    /// mapped for the guest's ring 3.
    public static let monitorArea: Range<UInt64> = FLEXOS_MONITOR_AREA_BASE..<FLEXOS_MONITOR_AREA_END
    /// Where page tables are allocated: the monitor area below the trap area.
    public static let pageTableArea: Range<UInt64> = FLEXOS_MONITOR_AREA_BASE..<FLEXOS_TRAP_AREA_BASE
    /// The exception entry of KVM runs (IDT, GDT, TSS, stubs, their stack): ring 0 only.
    public static let trapArea: Range<UInt64> = FLEXOS_TRAP_AREA_BASE..<FLEXOS_MONITOR_AREA_END
    /// The exception stubs store here (no memory slot: an MMIO exit); ring 0 only.
    public static let trapReportAddress: UInt64 = FLEXOS_TRAP_REPORT_ADDRESS
    public static let bootInfoAddress: UInt64 = FLEXOS_BOOT_INFO_ADDRESS
    public static let consoleRingAddress: UInt64 = FLEXOS_CONSOLE_RING_ADDRESS
    public static let consoleRingBytes: UInt64 = FLEXOS_CONSOLE_RING_BYTES
    /// Where the linker places an image's private segments.
    public static let image: Range<UInt64> = FLEXOS_IMAGE_BASE..<FLEXOS_IMAGE_LIMIT
    /// Hypercall n is a store to `hypercallWindow + 8 * n`; the page has no memory slot.
    public static let hypercallWindow: UInt64 = FLEXOS_HYPERCALL_WINDOW
    /// Where the linker places `.data_shared`, and where the monitor maps the shared area.
    public static let shared: Range<UInt64> = FLEXOS_SHARED_BASE..<FLEXOS_SHARED_LIMIT
    public static let maxCompartments = Int(FLEXOS_MAX_COMPARTMENTS)

    /// The private area (guard page, stack, heap) of compartment `index`, areas `stride`
    /// apart (the mechanism's `areaStride`).
    public static func compartmentArea(_ index: Int, stride: UInt64) -> Range<UInt64> {
        let base = FLEXOS_COMPARTMENT_AREA_BASE + UInt64(index) * stride
        return base..<(base + stride)
    }

    /// Each compartment's stack, at the start of its private area after a guard page.
    public static let stackSize: UInt64 = 256 * 1024

    /// Compartment `index`'s stack: the start of its private area, after a guard page.
    public static func stack(ofCompartment index: Int, stride: UInt64) -> Range<UInt64> {
        let bottom = compartmentArea(index, stride: stride).lowerBound + pageSize
        return bottom..<(bottom + stackSize)
    }

    /// The output section of the stack canary, read-only; the monitor writes its value.
    public static let stackGuardSection = ".stack_guard.runtime"

    /// The symbol an intel-mpk gate jumps to when the PKRU value it wrote is not the one it
    /// meant (a jump into the middle of a gate): the build generates it, fault reports name it.
    public static let protectionKeyGateAbortSymbol = "flexos_mpk_gate_abort"

    /// The PKRU value that opens key 0 (shared) and `key` alone (intel-mpk): access and
    /// write are disabled for every other key.
    public static func protectionKeyRights(allowing key: UInt8) -> UInt32 {
        ~(UInt32(3) | UInt32(3) << (2 * UInt32(key)))
    }

    /// The largest private memory a compartment can have under any mechanism (each
    /// mechanism's own limit is its `areaStride`).
    public static let maxCompartmentMemory: UInt64 = FLEXOS_VM_AREA_STRIDE

    /// Whether `size` bytes at `start` lie wholly in the image area or wholly in the shared
    /// area, where an image's segments and a manifest's regions must be. Overflow-safe:
    /// both numbers come from files.
    public static func holdsImageRange(start: UInt64, size: UInt64) -> Bool {
        let (end, overflow) = start.addingReportingOverflow(size)
        guard !overflow else { return false }
        return [image, shared].contains { start >= $0.lowerBound && end <= $0.upperBound }
    }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two).
public func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    (value + alignment - 1) & ~(alignment - 1)
}

/// Rounds `value` down to a multiple of `alignment` (a power of two).
public func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    value & ~(alignment - 1)
}
