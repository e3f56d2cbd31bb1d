import CFlexOSGuest

/// The console: bytes go into the ring the monitor set up, and one hypercall per line
/// (or per full ring) hands them to the monitor, not one exit per character.
enum Console {
    /// Where the ring is, from the boot info each time (not a pointer in runtime data).
    static var ring: UnsafeMutablePointer<flexos_console_ring>? { UnsafeMutablePointer(bitPattern: UInt(bootInfo.pointee.console_ring)) }
    static var data: UnsafeMutablePointer<UInt8>? {
        UnsafeMutableRawPointer(bitPattern: UInt(bootInfo.pointee.console_ring) + UInt(MemoryLayout<flexos_console_ring>.size))?.assumingMemoryBound(to: UInt8.self)
    }

    static func write(_ byte: UInt8) {
        guard let ring, let data else { return }
        let size = ring.pointee.size
        if ring.pointee.head &- flexos_load_acquire(&ring.pointee.tail) >= size { flush() }
        data[Int(ring.pointee.head % size)] = byte
        ring.pointee.head &+= 1
        if byte == UInt8(ascii: "\n") { flush() }
    }

    /// Hands everything written so far to the monitor.
    static func flush() {
        guard let ring, ring.pointee.head != flexos_load_acquire(&ring.pointee.tail) else { return }
        Hypercalls.consoleFlush()
    }
}

/// What Embedded Swift's `print` calls for every byte.
@_cdecl("putchar")
public func putchar(_ character: Int32) -> Int32 {
    Console.write(UInt8(truncatingIfNeeded: character))
    return character
}
