import FlexOS

/// BITFIELD and BITFIELD_RO: integers of 1 to 64 bits (u1..u63, i1..i64) read, set and
/// incremented at any bit offset of a string, as Redis 7.0 does them (bitops.c). Every
/// operation is read before any runs (the first bad one answers its error); a write grows
/// the string to its farthest bit first, even when OVERFLOW FAIL then writes nothing.
extension Commands {
    enum Overflow { case wrap, saturate, fail }

    struct BitFieldOperation {
        enum Kind { case get, set, increment }
        let kind: Kind
        let signed: Bool
        let bits: Int
        let offset: Int
        let value: Int64
        let overflow: Overflow
    }

    static let invalidBitFieldType: StaticString =
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."

    /// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
    /// [OVERFLOW WRAP|SAT|FAIL] ...; BITFIELD_RO key [GET type offset] ... when `readOnly`.
    static func bitfield(readOnly: Bool) -> Handler {
        { c, r in
            guard let operations = bitFieldOperations(c, &r) else { return }
            let writes = operations.contains { $0.kind != .get }
            if writes && readOnly { return r.error("ERR BITFIELD_RO only supports the GET subcommand") }
            let key = c.bytes(1), entry = Keyspace.live(key)
            var text: [UInt8] = []
            if let entry {
                guard case .string(let value) = entry.value else { return r.error(wrongType) }
                text = value
            }
            guard r.makeRoom(for: Reply.arrayBytes * (operations.count + 1)) else { return r.error(outOfMemory) }
            if writes {
                let farthest = operations.filter { $0.kind != .get }.map { $0.offset + $0.bits - 1 }.max() ?? 0
                let length = max(text.count, farthest >> 3 + 1)
                guard hasRoomForString(growingFrom: text.count, to: length) else { return r.error(outOfMemory) }
                text += [UInt8](repeating: 0, count: length - text.count)
            }
            r.array(operations.count)
            for operation in operations { run(operation, on: &text, &r) }
            if writes { Keyspace.entries[key] = Entry(value: .string(text), hint: .raw, expiresAt: entry?.expiresAt ?? 0) }
        }
    }

    /// The operations from argument 2 on, or nil with the error replied.
    private static func bitFieldOperations(_ c: Command, _ r: inout Reply) -> [BitFieldOperation]? {
        var operations: [BitFieldOperation] = []
        var overflow = Overflow.wrap
        var index = 2
        while index < c.count {
            let remaining = c.count - index - 1
            let kind: BitFieldOperation.Kind
            if c.isArgument(index, "get") && remaining >= 2 {
                kind = .get
            } else if c.isArgument(index, "set") && remaining >= 3 {
                kind = .set
            } else if c.isArgument(index, "incrby") && remaining >= 3 {
                kind = .increment
            } else if c.isArgument(index, "overflow") && remaining >= 1 {
                if c.isArgument(index + 1, "wrap") {
                    overflow = .wrap
                } else if c.isArgument(index + 1, "sat") {
                    overflow = .saturate
                } else if c.isArgument(index + 1, "fail") {
                    overflow = .fail
                } else {
                    r.error("ERR Invalid OVERFLOW type specified")
                    return nil
                }
                index += 2
                continue
            } else {
                r.error("ERR syntax error")
                return nil
            }
            guard let (signed, bits) = bitFieldType(c[index + 1]) else {
                r.error(invalidBitFieldType)
                return nil
            }
            guard let offset = bitFieldOffset(c[index + 2], bits: bits) else {
                r.error("ERR bit offset is not an integer or out of range")
                return nil
            }
            var value = 0
            if kind != .get {
                guard let given = Numbers.integer(c[index + 3]) else {
                    r.error(notInteger)
                    return nil
                }
                value = given
            }
            operations.append(BitFieldOperation(
                kind: kind, signed: signed, bits: bits, offset: offset, value: Int64(value), overflow: overflow))
            index += kind == .get ? 3 : 4
        }
        return operations
    }

    /// `i1`..`i64` or `u1`..`u63`: whether signed, and the width.
    private static func bitFieldType(_ text: UnsafeBufferPointer<UInt8>) -> (Bool, Int)? {
        guard let first = text.first, first == UInt8(ascii: "i") || first == UInt8(ascii: "u"),
            let bits = Numbers.integer(UnsafeBufferPointer(rebasing: text.dropFirst())), bits >= 1
        else { return nil }
        let signed = first == UInt8(ascii: "i")
        guard bits <= (signed ? 64 : 63) else { return nil }
        return (signed, bits)
    }

    /// A bit offset, or `#n`: the n-th field of this width; within a 512 MiB string.
    private static func bitFieldOffset(_ text: UnsafeBufferPointer<UInt8>, bits: Int) -> Int? {
        let counted = text.first == UInt8(ascii: "#")
        guard let number = Numbers.integer(UnsafeBufferPointer(rebasing: text.dropFirst(counted ? 1 : 0))) else {
            return nil
        }
        let offset = counted ? number &* bits : number
        guard offset >= 0, offset >> 3 < maximumStringLength else { return nil }
        return offset
    }

    private static func run(_ operation: BitFieldOperation, on text: inout [UInt8], _ r: inout Reply) {
        let bits = operation.bits
        let old = readBits(text, at: operation.offset, count: bits)
        func number(_ field: UInt64) -> Int { Int(operation.signed ? signExtended(field, bits: bits) : Int64(bitPattern: field)) }
        guard operation.kind != .get else { return r.integer(number(old)) }
        let increment = operation.kind == .increment ? operation.value : 0
        let new: UInt64?
        if operation.signed {
            let start = operation.kind == .increment ? signExtended(old, bits: bits) : operation.value
            new = signedResult(start, increment, operation).map { UInt64(bitPattern: $0) }
        } else {
            let start = operation.kind == .increment ? old : UInt64(bitPattern: operation.value)
            new = unsignedResult(start, increment, operation)
        }
        // OVERFLOW FAIL: nothing written, a null answered.
        guard let new else { return r.null() }
        writeBits(&text, new, at: operation.offset, count: bits)
        r.integer(number(operation.kind == .set ? old : new))
    }

    /// `value + increment` in a signed field of `operation.bits`; past its range, what WRAP
    /// or SAT writes, nil for FAIL (Redis's checkSignedBitfieldOverflow).
    private static func signedResult(_ value: Int64, _ increment: Int64, _ operation: BitFieldOperation) -> Int64? {
        let bits = operation.bits
        let maximum: Int64 = bits == 64 ? .max : (1 << Int64(bits - 1)) - 1
        let minimum = -maximum - 1
        let maximumIncrement = maximum &- value, minimumIncrement = minimum &- value
        let above = value > maximum || bits != 64 && increment > maximumIncrement || value >= 0 && increment > maximumIncrement
        let below = value < minimum || bits != 64 && increment < minimumIncrement || value < 0 && increment < minimumIncrement
        guard above || below else { return value &+ increment }
        switch operation.overflow {
        case .wrap: return signExtended(UInt64(bitPattern: value) &+ UInt64(bitPattern: increment), bits: bits)
        case .saturate: return above ? maximum : minimum
        case .fail: return nil
        }
    }

    /// The same in an unsigned field (Redis's checkUnsignedBitfieldOverflow).
    private static func unsignedResult(_ value: UInt64, _ increment: Int64, _ operation: BitFieldOperation) -> UInt64? {
        let maximum = ~(UInt64.max << UInt64(operation.bits))
        let above = value > maximum || increment > 0 && increment > Int64(bitPattern: maximum &- value)
        let below = !above && increment < 0 && increment < Int64(bitPattern: 0 &- value)
        guard above || below else { return value &+ UInt64(bitPattern: increment) }
        switch operation.overflow {
        case .wrap: return (value &+ UInt64(bitPattern: increment)) & maximum
        case .saturate: return above ? maximum : 0
        case .fail: return nil
        }
    }

    /// A `bits`-wide field's value with its top bit copied above it.
    private static func signExtended(_ value: UInt64, bits: Int) -> Int64 {
        guard bits < 64 else { return Int64(bitPattern: value) }
        let field = value & ~(UInt64.max << UInt64(bits))
        return Int64(bitPattern: field & (1 << UInt64(bits - 1)) != 0 ? field | UInt64.max << UInt64(bits) : field)
    }

    /// `count` bits from bit `offset` (the most significant first); zeros past the end.
    private static func readBits(_ text: [UInt8], at offset: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for position in offset..<(offset + count) {
            let byte = position >> 3
            let bit = byte < text.count ? UInt64(text[byte] >> UInt8(7 - position & 7)) & 1 : 0
            value = value << 1 | bit
        }
        return value
    }

    private static func writeBits(_ text: inout [UInt8], _ value: UInt64, at offset: Int, count: Int) {
        for index in 0..<count {
            let position = offset + index, mask = UInt8(0x80) >> UInt8(position & 7)
            let set = value >> UInt64(count - 1 - index) & 1 != 0
            text[position >> 3] = set ? text[position >> 3] | mask : text[position >> 3] & ~mask
        }
    }
}
