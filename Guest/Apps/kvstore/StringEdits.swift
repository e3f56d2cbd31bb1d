import FlexOS

/// The string commands that write into a value at an offset or read its bits (Redis 7.0's
/// SETRANGE, SETBIT, GETBIT, BITCOUNT), and HINCRBY. A write past the end pads with zero
/// bytes; what it would allocate is checked against the memory limit first.
extension Commands {
    /// Redis's proto-max-bulk-len: no string grows past 512 MiB.
    static let maximumStringLength = 512 << 20

    /// SETRANGE key offset value: the string's new length.
    static func setrange(_ c: Command, _ r: inout Reply) {
        guard let offset = Numbers.integer(c[2]) else { return r.error(notInteger) }
        guard offset >= 0 else { return r.error("ERR offset is out of range") }
        let key = c.bytes(1), value = c.bytes(3)
        let entry = Keyspace.live(key)
        var current: [UInt8] = []
        if let entry {
            guard case .string(let text) = entry.value else { return r.error(wrongType) }
            current = text
        }
        guard !value.isEmpty else { return r.integer(current.count) }
        guard offset <= maximumStringLength - value.count else {
            return r.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
        }
        guard write(value, at: offset, into: key, current: current, expiresAt: entry?.expiresAt ?? 0) else {
            return r.error(outOfMemory)
        }
        r.integer(max(current.count, offset + value.count))
    }

    /// Whether the memory limit allows a string of `old` bytes to become one of `length`
    /// (the new storage is allocated while the old one lives).
    static func hasRoomForString(growingFrom old: Int, to length: Int) -> Bool {
        Keyspace.hasRoom(for: MemoryCost.bytes(length) - MemoryCost.bytes(old), growth: MemoryCost.Pieces(MemoryCost.bytes(length)))
    }

    /// Writes `bytes` at `offset` into the string `current` of `key`, padding with zeros,
    /// when the memory limit allows the longer string.
    private static func write(_ bytes: [UInt8], at offset: Int, into key: [UInt8], current: [UInt8], expiresAt: UInt64) -> Bool {
        let length = max(current.count, offset + bytes.count)
        guard hasRoomForString(growingFrom: current.count, to: length) else { return false }
        var text = current
        if text.count < length { text += [UInt8](repeating: 0, count: length - text.count) }
        for (index, byte) in bytes.enumerated() { text[offset + index] = byte }
        Keyspace.entries[key] = Entry(value: .string(text), hint: .raw, expiresAt: expiresAt)
        return true
    }

    /// The bit offset of argument `index`: within a 512 MiB string (below 2^32), as Redis allows.
    private static func bitOffset(_ c: Command, _ index: Int) -> Int? {
        guard let offset = Numbers.integer(c[index]), offset >= 0, offset >> 3 < maximumStringLength else { return nil }
        return offset
    }

    /// SETBIT key offset 0|1: the bit it held.
    static func setbit(_ c: Command, _ r: inout Reply) {
        guard let offset = bitOffset(c, 2) else { return r.error("ERR bit offset is not an integer or out of range") }
        guard let bit = Numbers.integer(c[3]), bit == 0 || bit == 1 else {
            return r.error("ERR bit is not an integer or out of range")
        }
        let key = c.bytes(1), entry = Keyspace.live(key)
        var current: [UInt8] = []
        if let entry {
            guard case .string(let text) = entry.value else { return r.error(wrongType) }
            current = text
        }
        let byte = offset >> 3, mask = UInt8(0x80) >> UInt8(offset & 7)
        let old: UInt8 = byte < current.count ? current[byte] : 0
        let new = bit == 1 ? old | mask : old & ~mask
        guard write([new], at: byte, into: key, current: current, expiresAt: entry?.expiresAt ?? 0) else {
            return r.error(outOfMemory)
        }
        r.integer(old & mask == 0 ? 0 : 1)
    }

    /// GETBIT key offset: 0 past the end or without the key.
    static func getbit(_ c: Command, _ r: inout Reply) {
        guard let offset = bitOffset(c, 2) else { return r.error("ERR bit offset is not an integer or out of range") }
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .string(let text)?:
            let byte = offset >> 3
            r.integer(byte < text.count && text[byte] & (UInt8(0x80) >> UInt8(offset & 7)) != 0 ? 1 : 0)
        default: r.error(wrongType)
        }
    }

    /// BITCOUNT key [start end [BYTE|BIT]]: the set bits, in a range of bytes or of bits
    /// (negative indexes from the end, as GETRANGE's).
    static func bitcount(_ c: Command, _ r: inout Reply) {
        // As Redis: the key is looked up before the arguments are read.
        let text: [UInt8]
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: return r.integer(0)
        case .string(let value)?: text = value
        default: return r.error(wrongType)
        }
        guard c.count == 2 || c.count == 4 || c.count == 5 else { return r.error("ERR syntax error") }
        var inBits = false
        var range: (Int, Int)? = nil
        if c.count >= 4 {
            guard let start = Numbers.integer(c[2]), let end = Numbers.integer(c[3]) else { return r.error(notInteger) }
            // Both from the end and crossed is empty, as in Redis, before the unit is read.
            if start < 0 && end < 0 && start > end { return r.integer(0) }
            if c.count == 5 {
                if c.isArgument(4, "bit") { inBits = true } else if !c.isArgument(4, "byte") { return r.error("ERR syntax error") }
            }
            range = (start, end)
        }
        let total = inBits ? text.count * 8 : text.count
        var first = 0, last = total - 1
        if let (start, end) = range {
            first = start < 0 ? max(total + start, 0) : start
            last = end < 0 ? max(total + end, 0) : min(end, total - 1)
        }
        guard total > 0, first <= last else { return r.integer(0) }
        var count = 0
        if inBits {
            for bit in first...last where text[bit >> 3] & (UInt8(0x80) >> UInt8(bit & 7)) != 0 { count += 1 }
        } else {
            for byte in text[first...last] { count += byte.nonzeroBitCount }
        }
        r.integer(count)
    }

    /// BITPOS key bit [start [end [BYTE | BIT]]]: the first bit set to `bit` in the range,
    /// or -1. A missing key is all zeros (0 for a clear bit, -1 for a set one); without an end,
    /// the string continues with zeros, so a clear bit is found just past its end.
    static func bitpos(_ c: Command, _ r: inout Reply) {
        guard let bit = Numbers.integer(c[2]) else { return r.error(notInteger) }
        guard bit == 0 || bit == 1 else { return r.error("ERR The bit argument must be 1 or 0.") }
        let text: [UInt8]
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: return r.integer(bit == 1 ? -1 : 0)
        case .string(let value)?: text = value
        default: return r.error(wrongType)
        }
        guard c.count <= 6 else { return r.error("ERR syntax error") }
        // Read as Redis reads them: the start, the unit, then the end.
        let start = c.count >= 4 ? Numbers.integer(c[3]) : 0
        guard let start else { return r.error(notInteger) }
        var inBits = false
        if c.count == 6 {
            if c.isArgument(5, "bit") { inBits = true } else if !c.isArgument(5, "byte") { return r.error("ERR syntax error") }
        }
        let total = inBits ? text.count * 8 : text.count
        let end = c.count >= 5 ? Numbers.integer(c[4]) : total - 1
        guard let end else { return r.error(notInteger) }
        let first = max(start < 0 ? total &+ start : start, 0)
        let last = min(max(end < 0 ? total &+ end : end, 0), total - 1)
        guard first <= last else { return r.integer(-1) }
        // The range in bits, whichever unit it was given in.
        let (from, to) = inBits ? (first, last) : (first * 8, last * 8 + 7)
        let wanted = UInt8(truncatingIfNeeded: bit)
        var position = from
        while position <= to {
            let byte = text[position >> 3]
            // A whole byte without the bit sought is passed in one step.
            if position & 7 == 0 && position + 7 <= to && byte == (wanted == 1 ? 0 : 0xFF) {
                position += 8
                continue
            }
            if (byte >> UInt8(7 - position & 7)) & 1 == wanted { return r.integer(position) }
            position += 1
        }
        // Past the end of a range with no end given, the string goes on as zeros.
        r.integer(bit == 0 && c.count < 5 ? to + 1 : -1)
    }

    /// BITOP AND | OR | XOR | NOT destination key...: the operation byte by byte, shorter
    /// strings (and missing keys) read as zeros to the longest one's length; the result
    /// replaces the destination (an empty one deletes it). Answers its length.
    static func bitop(_ c: Command, _ r: inout Reply) {
        let operations: [StaticString] = ["and", "or", "xor", "not"]
        guard let operation = operations.firstIndex(where: { c.isArgument(1, $0) }) else {
            return r.error("ERR syntax error")
        }
        if operation == 3 && c.count != 4 { return r.error("ERR BITOP NOT must be called with a single source key.") }
        var sources: [[UInt8]] = []
        for index in 3..<c.count {
            switch Keyspace.live(c.bytes(index))?.value {
            case nil: sources.append([])
            case .string(let value)?: sources.append(value)
            default: return r.error(wrongType)
            }
        }
        let length = sources.reduce(0) { max($0, $1.count) }
        let destination = c.bytes(2)
        guard length > 0 else {
            Keyspace.entries[destination] = nil
            return r.integer(0)
        }
        let cost = MemoryCost.key(destination.count) &+ MemoryCost.bytes(length)
        guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(cost)) else { return r.error(outOfMemory) }
        var result = [UInt8](repeating: 0, count: length)
        for offset in 0..<length {
            let byte = { (source: [UInt8]) in offset < source.count ? source[offset] : 0 }
            switch operation {
            case 0: result[offset] = sources.reduce(0xFF) { $0 & byte($1) }
            case 1: result[offset] = sources.reduce(0) { $0 | byte($1) }
            case 2: result[offset] = sources.reduce(0) { $0 ^ byte($1) }
            default: result[offset] = ~byte(sources[0])
            }
        }
        Keyspace.entries[destination] = Entry(value: .string(result), hint: .raw)
        r.integer(length)
    }

    static let notFloat: StaticString = "ERR value is not a valid float"

    /// INCRBYFLOAT key increment: the new value, as Redis computes and writes it (LongDouble).
    static func incrbyfloat(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        let entry = Keyspace.live(key)
        var current = LongDouble.zero
        if let entry {
            guard case .string(let text) = entry.value else { return r.error(wrongType) }
            guard let value = text.withUnsafeBufferPointer({ LongDouble(text: $0) }) else { return r.error(notFloat) }
            current = value
        }
        guard let increment = LongDouble(text: c[2]) else { return r.error(notFloat) }
        let sum = current + increment
        guard !sum.isInfinite else { return r.error("ERR increment would produce NaN or Infinity") }
        let text = sum.text
        Keyspace.entries[key] = Entry(value: .string(text), hint: .notInteger, expiresAt: entry?.expiresAt ?? 0)
        r.bulk(text)
    }

    /// HINCRBYFLOAT key field increment: the field's new value.
    static func hincrbyfloat(_ c: Command, _ r: inout Reply) {
        guard let increment = LongDouble(text: c[3]) else { return r.error(notFloat) }
        guard !increment.isInfinite else { return r.error("ERR value is NaN or Infinity") }
        let key = c.bytes(1), field = c.bytes(2)
        var current = LongDouble.zero
        switch Keyspace.live(key)?.value {
        case nil: break
        case .hash(let hash)?:
            if let text = hash[field] {
                guard let value = text.withUnsafeBufferPointer({ LongDouble(text: $0) }) else {
                    return r.error("ERR hash value is not a float")
                }
                current = value
            }
        default: return r.error(wrongType)
        }
        let sum = current + increment
        guard !sum.isInfinite else { return r.error("ERR increment would produce NaN or Infinity") }
        let text = sum.text
        if Keyspace.live(key) == nil { Keyspace.entries[key] = Entry(value: .hash([:])) }
        _ = Keyspace.entries[key]?.value.withHash { $0[field] = text }
        r.bulk(text)
    }

    /// HINCRBY key field increment: the field's new value.
    static func hincrby(_ c: Command, _ r: inout Reply) {
        guard let amount = Numbers.integer(c[3]) else { return r.error(notInteger) }
        let key = c.bytes(1), field = c.bytes(2)
        var current = 0
        switch Keyspace.live(key)?.value {
        case nil: break
        case .hash(let hash)?:
            if let text = hash[field] {
                guard let value = Numbers.integer(text) else { return r.error("ERR hash value is not an integer") }
                current = value
            }
        default: return r.error(wrongType)
        }
        let (sum, overflow) = current.addingReportingOverflow(amount)
        guard !overflow else { return r.error("ERR increment or decrement would overflow") }
        if Keyspace.live(key) == nil { Keyspace.entries[key] = Entry(value: .hash([:])) }
        _ = Keyspace.entries[key]?.value.withHash { $0[field] = Numbers.text(sum) }
        r.integer(sum)
    }
}
