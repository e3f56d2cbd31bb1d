import CFlexOSGuest
import FlexOS

/// The network device as this library sees it: the header, the slots and their rings.
/// Every counter has one writer (flexos_abi.h); this side writes rx_tail, tx_head,
/// closed, accept_tail and guest_sleeping, and reads the rest with acquire loads.
enum Device {
    static let connections = Int(FLEXOS_NET_CONNECTIONS)
    static let ringBytes = UInt64(FLEXOS_NET_RING_BYTES)

    static var base: UnsafeMutableRawPointer {
        guard let device = Compartment.networkDevice else {
            panic("the net library runs in a compartment without the network device (it must be the library that declares `devices: [net]`)")
        }
        return device
    }

    static var header: UnsafeMutablePointer<flexos_net_device> { base.assumingMemoryBound(to: flexos_net_device.self) }

    static func slot(_ index: Int) -> UnsafeMutablePointer<flexos_net_slot> {
        (base + Int(FLEXOS_NET_SLOTS_OFFSET)).assumingMemoryBound(to: flexos_net_slot.self) + index
    }

    /// The connection's addresses, as bytes (struct flexos_net_addresses).
    static func addresses(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        (base + Int(flexos_net_addresses_offset(UInt32(index)))).assumingMemoryBound(to: UInt8.self)
    }

    static func receiveRing(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        (base + Int(flexos_net_rx_offset(UInt32(index)))).assumingMemoryBound(to: UInt8.self)
    }

    static func transmitRing(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        receiveRing(index) + Int(ringBytes)
    }

    /// Kicks the device if it sleeps: after this side published something it waits for.
    static func kickIfSleeping() {
        flexos_full_fence()
        if flexos_load32_acquire(&header.pointee.monitor_sleeping) != 0 { Hypercalls.kickNetwork() }
    }

    /// The slot numbers the device accepted since the last call.
    static func takeAccepted(_ body: (Int) -> Void) {
        let head = flexos_load_acquire(&header.pointee.accept_head)
        var tail = header.pointee.accept_tail
        while tail != head {
            let entry = (UnsafeRawPointer(header) + Int(flexos_net_accept_queue_offset()))
                .load(fromByteOffset: Int(tail % UInt64(connections)) * 4, as: UInt32.self)
            tail &+= 1
            if Int(entry) < connections { body(Int(entry)) }
        }
        flexos_store_release(&header.pointee.accept_tail, tail)
    }
}
