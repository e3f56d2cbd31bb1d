import CFlexOSGuest

/// The boot-info block the monitor left for this compartment: a read-only page at a fixed
/// address, never a pointer kept in runtime data (which every intel-mpk compartment can write).
var bootInfo: UnsafePointer<flexos_boot_info> { flexos_boot() }

/// The application's entry point, defined by the application library.
@_extern(c, "app_main")
func applicationMain() -> Int32

/// Where the monitor enters every compartment: 64-bit ring 3, RSP at the top of this
/// compartment's stack, RDI pointing at the boot info. Never returns.
@_cdecl("flexos_start")
public func flexosStart(_ info: UnsafePointer<flexos_boot_info>) -> Never {
    guard info == bootInfo, info.pointee.magic == FLEXOS_BOOT_MAGIC, info.pointee.abi_version == FLEXOS_ABI_VERSION else {
        Hypercalls.exit(code: 127)
    }
    SharedMemory.attach()
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
    public static var index: Int { Int(bootInfo.pointee.compartment) }
    /// How many VMs the image set has.
    public static var count: Int { Int(bootInfo.pointee.compartment_count) }
    /// Under intel-mpk, the index of the compartment running now, read from PKRU (which
    /// only the gates write); elsewhere the application's.
    public static var current: Int {
        bootInfo.pointee.keyed_count > 0 ? Int(flexos_keyed_running_compartment()) : Int(bootInfo.pointee.keyed_application)
    }
    /// Seconds after which the image set's network device closes an idle client (0: never).
    public static var clientIdleTimeoutSeconds: Int { Int(bootInfo.pointee.client_idle_timeout) }
    /// The network device, in the one compartment that holds it (flexos_abi.h).
    public static var networkDevice: UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(bootInfo.pointee.net_device))
    }
}

/// Time from the time-stamp counter, with no VM exit (a hypercall costs tens of µs).
public enum Clock {
    /// Milliseconds since some fixed point in the past (the host's boot): for expiries.
    public static var milliseconds: UInt64 {
        let hz = bootInfo.pointee.tsc_hz
        guard hz >= 1000 else { return Hypercalls.monotonicNanoseconds() / 1_000_000 }
        return flexos_cycles() / (hz / 1000)
    }

    /// Nanoseconds on the same clock as `milliseconds`.
    public static var nanoseconds: UInt64 {
        let hz = bootInfo.pointee.tsc_hz
        guard hz >= 1000 else { return Hypercalls.monotonicNanoseconds() }
        let ticks = flexos_cycles()
        return ticks / hz * 1_000_000_000 + ticks % hz * 1_000_000_000 / hz
    }

    /// Time-stamp counter ticks per second.
    public static var ticksPerSecond: UInt64 { bootInfo.pointee.tsc_hz }
}
