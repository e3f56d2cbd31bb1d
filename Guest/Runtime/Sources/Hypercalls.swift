import CFlexOSGuest

/// The guest side of the hypercalls of flexos_abi.h. Each builds its argument block on
/// the stack and stores its address to the hypercall window.
public enum Hypercalls {
    /// Copies out everything appended to the console ring.
    static func consoleFlush() {
        var block = flexos_hc_console_flush(reserved: 0)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_CONSOLE_FLUSH.rawValue), &block)
    }

    /// Ends the image set with `code`.
    public static func exit(code: Int64) -> Never {
        var block = flexos_hc_exit(code: code)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_EXIT.rawValue), &block)
        while true { flexos_cpu_relax() }
    }

    /// Ends the image set with `message`, raised at `file`:`line`.
    /// `codeAddress`, when not 0, is the code the panic is about, for the monitor to name.
    static func panic(message: UnsafeRawBufferPointer, file: UnsafeRawBufferPointer, line: UInt, codeAddress: UInt = 0) -> Never {
        var block = flexos_hc_panic(
            message: UInt64(UInt(bitPattern: message.baseAddress)), message_length: UInt64(message.count),
            file: UInt64(UInt(bitPattern: file.baseAddress)), file_length: UInt64(file.count), line: UInt64(line),
            code_address: UInt64(codeAddress))
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_PANIC.rawValue), &block)
        while true { flexos_cpu_relax() }
    }

    /// The host's monotonic clock in nanoseconds (one VM exit).
    public static func monotonicNanoseconds() -> UInt64 {
        var block = flexos_hc_time(nanoseconds: 0, unix_nanoseconds: 0)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_TIME.rawValue), &block)
        return block.nanoseconds
    }

    /// The host's wall clock in nanoseconds since 1970 (one VM exit); nil where the engine
    /// does not know it.
    public static func unixNanoseconds() -> UInt64? {
        var block = flexos_hc_time(nanoseconds: 0, unix_nanoseconds: 0)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_TIME.rawValue), &block)
        return block.unix_nanoseconds == 0 ? nil : block.unix_nanoseconds
    }

    /// Sleeps until another compartment or a device wakes this one, or `timeout`
    /// nanoseconds pass (0: no limit). A wake sent before the wait is not lost. Sleeps in
    /// the kernel where the monitor offers it (no exit), else in the monitor. Every caller
    /// looks again afterwards, so a wait may end early.
    public static func wait(timeout: UInt64) {
        let entry = bootInfo.pointee.sleep_entry
        if entry != 0 {
            flexos_sleep_in_kernel(entry, UInt32(timeout == 0 ? longestHalt : min(max(timeout, 1), longestHalt)))
        } else {
            var block = flexos_hc_wait(timeout_nanoseconds: timeout, woken: 0)
            flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAIT.rawValue), &block)
        }
        Gates.countOwn { $0.pointee.sleeps &+= 1 }
    }

    /// The longest one halt lasts, even untimed: a wake lost on its way in costs at most
    /// this, never a compartment asleep for good (seen twice early on with gatebench, both
    /// VMs halted after their first wake; not reproduced in 200 runs since). Each halt costs
    /// emulated ring 0 and a wake-up: idle, kvstore-parser-vmept2 takes 0.15% of a core (0.007%
    /// waiting in flexosd).
    static let longestHalt: UInt64 = 200_000_000

    /// Tells the network device there is work (needed only while it says it sleeps): its
    /// doorbell where the monitor wired one, else the kick hypercall.
    public static func kickNetwork() {
        let doorbell = bootInfo.pointee.net_doorbell
        if doorbell != 0 { return ring(doorbell) }
        var block = flexos_hc_net_kick(reserved: 0)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_NET_KICK.rawValue), &block)
    }

    /// Wakes compartment `index`: its doorbell where the monitor wired them (no exit), else
    /// the wake hypercall.
    static func wake(_ index: Int) {
        let doorbells = bootInfo.pointee.doorbells
        if doorbells != 0 { return ring(doorbells + 8 * UInt64(index)) }
        var block = flexos_hc_wake(compartment: UInt32(index), reserved: 0)
        flexos_hypercall(UInt64(FLEXOS_HYPERCALL_WAKE.rawValue), &block)
    }

    private static func ring(_ doorbell: UInt64) {
        flexos_ring_doorbell(doorbell)
        Gates.countOwn { $0.pointee.doorbells_rung &+= 1 }
    }
}

/// Sleeps for about `milliseconds` (the vCPU waits in the monitor, costing no CPU).
/// Gate calls into this compartment wait until it is back in a gate call or serving.
/// Time is read from the TSC where the boot info gives its rate: a time hypercall is an
/// exit (a round trip to flexosd under QEMU), and a sleep made two of them per wait.
public func sleep(milliseconds: UInt64) {
    let hz = Clock.ticksPerSecond
    guard hz >= 1000 else {
        let deadline = Hypercalls.monotonicNanoseconds() + milliseconds * 1_000_000
        var now = Hypercalls.monotonicNanoseconds()
        while now < deadline {
            Hypercalls.wait(timeout: deadline - now)
            now = Hypercalls.monotonicNanoseconds()
        }
        return
    }
    let deadline = flexos_cycles() &+ milliseconds &* (hz / 1000)
    var now = flexos_cycles()
    while now < deadline {
        let ticks = deadline - now
        Hypercalls.wait(timeout: max((ticks / hz) &* 1_000_000_000 &+ (ticks % hz) &* 1_000_000_000 / hz, 1))
        now = flexos_cycles()
    }
}
