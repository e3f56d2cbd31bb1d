import CFlexOSGuest
import FlexOS

/// Moves the console ring's head behind its tail (as if 2^64 bytes were pending), then
/// asks the monitor to flush: the monitor must refuse the ring, not copy from it.
@_cdecl("app_main")
public func appMain() -> Int32 {
    print("smashing the console ring")
    let ring = UnsafeMutablePointer<flexos_console_ring>(bitPattern: UInt(FLEXOS_CONSOLE_RING_ADDRESS))!
    ring.pointee.head = ring.pointee.tail &- 1
    var block = flexos_hc_console_flush(reserved: 0)
    flexos_hypercall(UInt64(FLEXOS_HYPERCALL_CONSOLE_FLUSH.rawValue), &block)
    return 0
}
