import CFlexOSGuest
import FlexOS

@_cdecl("app_main")
public func appMain() -> Int32 {
    guard let device = Compartment.networkDevice else { panic("no network device") }
    let header = device.assumingMemoryBound(to: flexos_net_device.self)
    print("netcorrupt: waiting for a client")
    while flexos_load_acquire(&header.pointee.accept_head) == 0 { Hypercalls.wait(timeout: 1_000_000) }
    let slot = Int((device + Int(flexos_net_accept_queue_offset())).load(as: UInt32.self))
    let shared = (device + Int(FLEXOS_NET_SLOTS_OFFSET)).assumingMemoryBound(to: flexos_net_slot.self) + slot
    print("netcorrupt: corrupting the transmit head of slot \(slot)")
    flexos_store_release(&shared.pointee.tx_head, 0xDEAD_BEEF_0000)
    Hypercalls.kickNetwork()
    while true { Hypercalls.wait(timeout: 0) }
}
