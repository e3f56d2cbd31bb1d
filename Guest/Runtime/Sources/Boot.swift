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
    Random.seed(info.pointee.random_seed)
    StackProtector.arm()
    Console.attach(info.pointee.console_ring)
    PrivateHeap.attach(base: info.pointee.heap_base, size: info.pointee.heap_size)
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
}
