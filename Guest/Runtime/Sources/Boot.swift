import CFlexOSGuest

/// The boot-info block the monitor left for this compartment (read-only).
nonisolated(unsafe) var bootInfo: UnsafePointer<flexos_boot_info>? = nil

/// The application's entry point, defined by the application library.
@_extern(c, "app_main")
func applicationMain() -> Int32

/// Where the monitor enters every compartment: 64-bit ring 3, RSP at the top of this
/// compartment's stack, RDI pointing at the boot info. Never returns.
@_cdecl("flexos_start")
public func flexosStart(_ info: UnsafePointer<flexos_boot_info>) -> Never {
    guard info.pointee.magic == FLEXOS_BOOT_MAGIC, info.pointee.abi_version == FLEXOS_ABI_VERSION else {
        Hypercalls.exit(code: 127)
    }
    bootInfo = info
    flexos_hypercall_mode = info.pointee.hypercall_mode
    Random.seed(info.pointee.random_seed)
    StackProtector.arm()
    Console.attach(info.pointee.console_ring)
    PrivateHeap.attach(base: info.pointee.heap_base, size: info.pointee.heap_size)
    flexos_current_compartment = info.pointee.keyed_application
    SharedMemory.attach(info)
    if info.pointee.compartment == info.pointee.app_compartment {
        let code = applicationMain()
        Console.flush()
        Hypercalls.exit(code: Int64(code))
    }
    Gates.serveForever()
}

/// Facts about the compartment this code runs in.
public enum Compartment {
    /// The index of this VM's compartment in the image set.
    public static var index: Int { Int(bootInfo!.pointee.compartment) }
    /// How many VMs the image set has.
    public static var count: Int { Int(bootInfo!.pointee.compartment_count) }
    /// Under intel-mpk, the index of the compartment running now (the gates switch it).
    public static var current: Int { Int(flexos_current_compartment) }
    /// The network device, in the one compartment that holds it (flexos_abi.h).
    public static var networkDevice: UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(bootInfo?.pointee.net_device ?? 0))
    }
}

/// Time from the time-stamp counter, with no VM exit (a hypercall costs tens of µs).
public enum Clock {
    /// Milliseconds since some fixed point in the past (the host's boot): for expiries.
    public static var milliseconds: UInt64 {
        let hz = bootInfo?.pointee.tsc_hz ?? 0
        guard hz >= 1000 else { return Hypercalls.monotonicNanoseconds() / 1_000_000 }
        return flexos_cycles() / (hz / 1000)
    }

    /// Time-stamp counter ticks per second.
    public static var ticksPerSecond: UInt64 { bootInfo?.pointee.tsc_hz ?? 0 }
}
