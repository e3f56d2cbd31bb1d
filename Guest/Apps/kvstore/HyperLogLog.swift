/// A HyperLogLog as Redis 7.0 keeps one in a string, byte for byte: a 16-byte header
/// ("HYLL", the encoding, three unused bytes, the cached cardinality little-endian with its
/// top bit set while stale), then 16384 six-bit registers, dense (packed from the low bits
/// up) or sparse (runs: ZERO 00xxxxxx, XZERO 01xxxxxx yyyyyyyy, VAL 1vvvvvxx). An element
/// raises register hash & 16383 to the position of the first set bit above those 14 bits
/// (MurmurHash64A);
/// PFCOUNT estimates with Ertl's improved estimator. The sparse form changes exactly as
/// Redis changes it (a run split in place, equal neighbours merged within five opcodes,
/// dense past 3000 bytes or a value above 32), so GET answers the same bytes.
struct HyperLogLog {
    static let registers = 16384
    static let headerBytes = 16
    static let denseBytes = headerBytes + (registers * 6 + 7) / 8
    static let sparseMaximumBytes = 3000
    static let dense: UInt8 = 0, sparse: UInt8 = 1

    /// The string's bytes.
    var bytes: [UInt8]

    /// A new one: sparse, every register zero (one XZERO run), the cached count 0.
    init() {
        bytes = Array("HYLL".utf8) + [HyperLogLog.sparse] + [UInt8](repeating: 0, count: 11)
        bytes += [0x40 | UInt8((HyperLogLog.registers - 1) >> 8), UInt8((HyperLogLog.registers - 1) & 0xFF)]
    }

    /// `value` when it holds one (the checks Redis makes: length, magic, encoding, a dense
    /// one's exact size); nil otherwise.
    init?(_ value: [UInt8]) {
        guard value.count >= HyperLogLog.headerBytes, value.starts(with: "HYLL".utf8), value[4] <= HyperLogLog.sparse,
            value[4] == HyperLogLog.sparse || value.count == HyperLogLog.denseBytes
        else { return nil }
        bytes = value
    }

    var isDense: Bool { bytes[4] == HyperLogLog.dense }

    mutating func invalidateCache() { bytes[15] |= 0x80 }

    /// The cached count, when it is valid.
    var cachedCount: UInt64? {
        guard bytes[15] & 0x80 == 0 else { return nil }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 + $1]) << UInt64(8 * $1) }
    }

    mutating func cache(_ count: UInt64) {
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: count >> UInt64(8 * index)) }
    }

    /// Adds an element: true when a register grew; nil for a corrupted sparse form.
    mutating func add(_ element: UnsafeBufferPointer<UInt8>) -> Bool? {
        let hash = HyperLogLog.murmurHash64A(element)
        let index = Int(hash & UInt64(HyperLogLog.registers - 1))
        let count = UInt8((hash >> 14 | 1 << 50).trailingZeroBitCount + 1)
        return set(index, atLeast: count)
    }

    /// Raises register `index` to `count`: true when it grew; nil for a corrupted sparse form.
    mutating func set(_ index: Int, atLeast count: UInt8) -> Bool? {
        if isDense {
            guard denseRegister(index) < count else { return false }
            setDenseRegister(index, count)
            return true
        }
        return setSparse(index, count)
    }

    /// Every register (16384 values), or nil for a corrupted sparse form.
    var registerValues: [UInt8]? {
        if isDense { return (0..<HyperLogLog.registers).map { denseRegister($0) } }
        var values: [UInt8] = []
        values.reserveCapacity(HyperLogLog.registers)
        var position = HyperLogLog.headerBytes
        while position < bytes.count {
            let (value, run, length) = opcode(at: position)
            guard values.count + run <= HyperLogLog.registers else { return nil }
            values += [UInt8](repeating: value, count: run)
            position += length
        }
        return values.count == HyperLogLog.registers ? values : nil
    }

    // MARK: Dense registers

    private func denseRegister(_ index: Int) -> UInt8 {
        let bit = index * 6, byte = HyperLogLog.headerBytes + bit / 8, shift = bit & 7
        let low = Int(bytes[byte]) >> shift
        let high = byte + 1 < bytes.count ? Int(bytes[byte + 1]) << (8 - shift) : 0
        return UInt8((low | high) & 63)
    }

    private mutating func setDenseRegister(_ index: Int, _ value: UInt8) {
        let bit = index * 6, byte = HyperLogLog.headerBytes + bit / 8, shift = bit & 7
        let wide = Int(value) << shift
        bytes[byte] = bytes[byte] & ~UInt8(truncatingIfNeeded: 63 << shift) | UInt8(truncatingIfNeeded: wide)
        if byte + 1 < bytes.count {
            bytes[byte + 1] = bytes[byte + 1] & ~UInt8(truncatingIfNeeded: 63 >> (8 - shift)) | UInt8(truncatingIfNeeded: wide >> 8)
        }
    }

    /// The sparse form made dense (the header kept); false when it was corrupted.
    mutating func makeDense() -> Bool {
        guard !isDense else { return true }
        guard let values = registerValues else { return false }
        bytes = Array(bytes[0..<HyperLogLog.headerBytes]) + [UInt8](repeating: 0, count: HyperLogLog.denseBytes - HyperLogLog.headerBytes)
        bytes[4] = HyperLogLog.dense
        for (index, value) in values.enumerated() where value != 0 { setDenseRegister(index, value) }
        return true
    }

    // MARK: Sparse opcodes

    /// The opcode at `position`: its register value, how many registers it covers, its bytes.
    private func opcode(at position: Int) -> (value: UInt8, run: Int, length: Int) {
        let byte = bytes[position]
        if byte & 0xC0 == 0 { return (0, Int(byte & 0x3F) + 1, 1) }
        if byte & 0x80 != 0 { return ((byte >> 2 & 0x1F) + 1, Int(byte & 3) + 1, 1) }
        let low = position + 1 < bytes.count ? Int(bytes[position + 1]) : 0
        return (0, (Int(byte & 0x3F) << 8 | low) + 1, 2)
    }

    private static func value(_ value: UInt8, run: Int) -> UInt8 { 0x80 | (value - 1) << 2 | UInt8(run - 1) }

    private static func zeros(_ run: Int) -> [UInt8] {
        run > 64 ? [0x40 | UInt8((run - 1) >> 8), UInt8((run - 1) & 0xFF)] : [UInt8(run - 1)]
    }

    /// Redis's hllSparseSet: finds the opcode covering `index`, splits it around the new
    /// value (or rewrites a run of one), merges equal values nearby; dense when `count` is
    /// above 32 or the form would pass 3000 bytes.
    private mutating func setSparse(_ index: Int, _ count: UInt8) -> Bool? {
        if count > 32 { return promote(index, count) }
        var position = HyperLogLog.headerBytes, first = 0, previous: Int? = nil
        var current = (value: UInt8(0), run: 0, length: 0)
        while position < bytes.count {
            current = opcode(at: position)
            if index <= first + current.run - 1 { break }
            previous = position
            position += current.length
            first += current.run
        }
        guard current.run > 0, position < bytes.count else { return nil }
        let isValue = bytes[position] & 0x80 != 0
        if isValue && current.value >= count { return false }
        if current.run == 1 && (isValue || current.length == 1) {
            bytes[position] = HyperLogLog.value(count, run: 1)
        } else {
            let last = first + current.run - 1
            var replacement: [UInt8] = []
            if index != first {
                replacement += isValue ? [HyperLogLog.value(current.value, run: index - first)] : HyperLogLog.zeros(index - first)
            }
            replacement.append(HyperLogLog.value(count, run: 1))
            if index != last {
                replacement += isValue ? [HyperLogLog.value(current.value, run: last - index)] : HyperLogLog.zeros(last - index)
            }
            let growth = replacement.count - current.length
            if growth > 0 && bytes.count + growth > HyperLogLog.sparseMaximumBytes { return promote(index, count) }
            bytes.replaceSubrange(position..<(position + current.length), with: replacement)
        }
        mergeValues(from: previous ?? HyperLogLog.headerBytes)
        invalidateCache()
        return true
    }

    /// Merges adjacent VAL opcodes of one value (up to a run of four), looking at five
    /// opcodes from `start`, as Redis does after each change.
    private mutating func mergeValues(from start: Int) {
        var position = start, scan = 5
        while position < bytes.count && scan > 0 {
            scan -= 1
            let byte = bytes[position]
            if byte & 0x80 == 0 {
                position += byte & 0xC0 == 0x40 ? 2 : 1
                continue
            }
            if position + 1 < bytes.count, bytes[position + 1] & 0x80 != 0 {
                let left = opcode(at: position), right = opcode(at: position + 1)
                if left.value == right.value && left.run + right.run <= 4 {
                    bytes[position + 1] = HyperLogLog.value(left.value, run: left.run + right.run)
                    bytes.remove(at: position)
                    continue
                }
            }
            position += 1
        }
    }

    private mutating func promote(_ index: Int, _ count: UInt8) -> Bool? {
        guard makeDense() else { return nil }
        setDenseRegister(index, count)
        return true
    }

    // MARK: Counting

    /// Ertl's estimate ("New cardinality estimation algorithms for HyperLogLog sketches")
    /// from the registers, in the order of Redis's arithmetic, rounded half away from zero.
    static func estimate(_ values: [UInt8]) -> UInt64 {
        var histogram = [Int](repeating: 0, count: 64)
        for value in values { histogram[Int(value & 63)] += 1 }
        let m = Double(registers)
        var z = m * tau((m - Double(histogram[51])) / m)
        for j in stride(from: 50, through: 1, by: -1) {
            z += Double(histogram[j])
            z *= 0.5
        }
        z += m * sigma(Double(histogram[0]) / m)
        let alpha = 0.721347520444481703680
        // llroundl: half away from zero (by hand: the guest has no C library's round).
        let estimate = alpha * m * m / z
        guard estimate < 0x1p63 else { return UInt64(bitPattern: Int64.min) }
        let whole = UInt64(estimate)
        return estimate - Double(whole) >= 0.5 ? whole + 1 : whole
    }

    private static func sigma(_ start: Double) -> Double {
        if start == 1 { return .infinity }
        var x = start, y = 1.0, z = start, previous = 0.0
        repeat {
            x *= x
            previous = z
            z += x * y
            y += y
        } while previous != z
        return z
    }

    private static func tau(_ start: Double) -> Double {
        if start == 0 || start == 1 { return 0 }
        var x = start, y = 1.0, z = 1 - start, previous = 0.0
        repeat {
            x = x.squareRoot()
            previous = z
            y *= 0.5
            z -= (1 - x) * (1 - x) * y
        } while previous != z
        return z / 3
    }

    /// MurmurHash2, 64-bit (MurmurHash64A), with Redis's seed, reading words little-endian.
    static func murmurHash64A(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let m: UInt64 = 0xC6A4_A793_5BD1_E995, seed: UInt64 = 0xADC8_3B19
        var h = seed ^ UInt64(key.count) &* m
        let whole = key.count - key.count % 8
        func word(_ at: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(key[at + $1]) << UInt64(8 * $1) }
        }
        for start in stride(from: 0, to: whole, by: 8) {
            var k = word(start, 8) &* m
            k ^= k >> 47
            k = k &* m
            h ^= k
            h = h &* m
        }
        if key.count % 8 != 0 {
            h ^= word(whole, key.count % 8)
            h = h &* m
        }
        h ^= h >> 47
        h = h &* m
        h ^= h >> 47
        return h
    }
}
