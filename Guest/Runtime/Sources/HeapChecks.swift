import CFlexOSGuest

/// The hardening heap-checks: what a checked heap (Heap.swift) does to each block.
///
/// A checked block is [size | flags][cookie ^ address][allocation site][bytes asked for],
/// the payload, then a canary up to the block's end. Freeing checks the canary (an
/// overflow), the header (a stray pointer) and a freed block's marker (a double free),
/// then poisons the payload; allocating from poisoned memory checks the poison is intact
/// (a write after free). Each is reported by a panic naming the allocation site where the
/// block's header still knows it.
enum HeapChecks {
    static let headerSize: UInt = 32
    /// At least this many canary bytes follow every payload.
    static let canaryBytes: UInt = 8
    static let canary: UInt8 = 0xFC
    static let poisonByte: UInt8 = 0xDD
    /// Word 3 of a freed block: this, xor its address.
    static let freedMarker: UInt = 0xF4EE_DB10_C000_0000

    /// A block of `size` bytes at `block` is handed out for `requested` bytes; what of it
    /// lies below `poisonedBelow` was freed before and must still hold the poison.
    static func prepare(block: UInt, size: UInt, requested: UInt, site: UInt, poisonedBelow: UInt) {
        if let written = firstByte(from: block + headerSize, to: min(block + size, poisonedBelow), not: poisonByte) {
            var text = PanicText("use after free (heap-checks): freed memory at ")
            text.append(hex: written)
            text.append(" was written after it was freed (found when a block of ")
            text.append(decimal: requested)
            text.append(" bytes was allocated over it, by the code named here)")
            text.panic(codeAddress: site)
        }
        Heap.setWord(block, 2, site)
        Heap.setWord(block, 3, requested)
        fill(block + headerSize + requested, count: size - headerSize - requested, with: canary)
    }

    /// The used block at `block` is being freed: its canary must be intact.
    static func retire(block: UInt, size: UInt) {
        let requested = Heap.word(block, 3), site = Heap.word(block, 2)
        guard requested <= size - headerSize else {
            var text = PanicText("heap corruption (heap-checks): the header of the block at ")
            text.append(hex: block + headerSize)
            text.append(" was overwritten (found when it was freed)")
            text.panic()
        }
        if let written = firstByte(from: block + headerSize + requested, to: block + size, not: canary) {
            var text = PanicText("heap overflow (heap-checks): the block of ")
            text.append(decimal: requested)
            text.append(" bytes at ")
            text.append(hex: block + headerSize)
            text.append(" was written past its end, at ")
            text.append(hex: written)
            text.append(" (found when it was freed; the code named here allocated it)")
            text.panic(codeAddress: site)
        }
        Heap.setWord(block, 3, freedMarker ^ block)
        poison(block + headerSize, count: size - headerSize)
    }

    /// A free of `block` that is not an allocated block: names a double free when the
    /// block's header says it was freed. Returns when it cannot tell.
    static func reportBadFree(block: UInt, in heap: Range<UInt>) {
        guard heap.contains(block), block % 16 == 0, block + headerSize <= heap.upperBound,
              Heap.word(block, 0) & Heap.usedBit == 0, Heap.word(block, 3) == freedMarker ^ block else { return }
        var text = PanicText("double free (heap-checks): the block at ")
        text.append(hex: block + headerSize)
        text.append(" was freed twice (the code named here allocated it)")
        text.panic(codeAddress: Heap.word(block, 2))
    }

    static func poison(_ address: UInt, count: UInt) { fill(address, count: count, with: poisonByte) }

    private static func fill(_ address: UInt, count: UInt, with byte: UInt8) {
        guard count > 0 else { return }
        UnsafeMutableRawPointer(bitPattern: address)!.initializeMemory(as: UInt8.self, repeating: byte, count: Int(count))
    }

    /// The first address in [from, to) whose byte is not `expected`.
    private static func firstByte(from: UInt, to: UInt, not expected: UInt8) -> UInt? {
        var address = from
        let pattern = UInt(expected) &* 0x0101_0101_0101_0101
        while address + 8 <= to && address % 8 == 0 {
            if UnsafePointer<UInt>(bitPattern: address)!.pointee != pattern { break }
            address += 8
        }
        while address < to {
            if UnsafePointer<UInt8>(bitPattern: address)!.pointee != expected { return address }
            address += 1
        }
        return nil
    }
}
