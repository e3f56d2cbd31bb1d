// The arithmetic on integers of any size that reading and writing numbers exactly needs:
// scores (DoubleText, Numbers) and long doubles (LongDouble).

/// Unsigned integers of any size: 32-bit limbs, least significant first.
typealias Big = [UInt32]

extension Array where Element == UInt32 {
    init(_ value: UInt64) { self = [UInt32(truncatingIfNeeded: value), UInt32(truncatingIfNeeded: value >> 32)] }

    /// number × factor + addend, in place.
    static func multiply(_ number: inout Big, by factor: UInt64, adding addend: UInt64 = 0) {
        var carry: UInt64 = addend
        for index in number.indices {
            let product = UInt64(number[index]) * factor + carry
            number[index] = UInt32(truncatingIfNeeded: product)
            carry = product >> 32
        }
        if carry != 0 { number.append(UInt32(carry)) }
    }

    /// Divides in place; the remainder.
    static func divide(_ number: inout Big, by divisor: UInt64) -> UInt64 {
        var remainder: UInt64 = 0
        for index in number.indices.reversed() {
            let current = remainder << 32 | UInt64(number[index])
            number[index] = UInt32(current / divisor)
            remainder = current % divisor
        }
        return remainder
    }

    static func bitLength(_ number: Big) -> Int {
        guard let top = number.lastIndex(where: { $0 != 0 }) else { return 0 }
        return top * 32 + 32 - number[top].leadingZeroBitCount
    }

    static func bit(_ number: Big, _ index: Int) -> Bool {
        index >= 0 && index / 32 < number.count && number[index / 32] >> UInt32(index % 32) & 1 == 1
    }

    /// Whether any bit below `index` is set.
    static func hasBits(_ number: Big, below index: Int) -> Bool {
        guard index > 0 else { return false }
        let limbs = Swift.min(index / 32, number.count)
        if number[..<limbs].contains(where: { $0 != 0 }) { return true }
        guard limbs < number.count, index % 32 > 0 else { return false }
        return number[limbs] & (UInt32(1) << UInt32(index % 32) &- 1) != 0
    }

    /// `count` (at most 64) bits from bit `from` on, as an integer.
    static func bits(_ number: Big, from: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in stride(from: from + count - 1, through: from, by: -1) { value = value << 1 | (bit(number, index) ? 1 : 0) }
        return value
    }

    static func shiftedLeft(_ number: Big, by shift: Int) -> Big {
        let limbs = shift / 32, bits = UInt32(shift % 32)
        var result = Big(repeating: 0, count: limbs) + number + [0]
        guard bits > 0 else { return result }
        for index in stride(from: result.count - 1, to: limbs, by: -1) {
            result[index] = result[index] << bits | result[index - 1] >> (32 - bits)
        }
        result[limbs] <<= bits
        return result
    }

    static func shiftedRight(_ number: Big, by shift: Int) -> Big {
        let limbs = shift / 32, bits = UInt32(shift % 32)
        guard limbs < number.count else { return [0] }
        var result = Array(number[limbs...])
        if bits > 0 {
            for index in result.indices {
                result[index] = result[index] >> bits | (index + 1 < result.count ? result[index + 1] << (32 - bits) : 0)
            }
        }
        return result
    }

    static func compare(_ a: Big, _ b: Big) -> Int {
        let count = Swift.max(a.count, b.count)
        for index in stride(from: count - 1, through: 0, by: -1) {
            let x = index < a.count ? a[index] : 0, y = index < b.count ? b[index] : 0
            if x != y { return x < y ? -1 : 1 }
        }
        return 0
    }

    static func add(_ a: Big, _ b: Big) -> Big {
        var result = Big(repeating: 0, count: Swift.max(a.count, b.count) + 1)
        var carry: UInt64 = 0
        for index in 0..<(result.count - 1) {
            let sum = UInt64(index < a.count ? a[index] : 0) + UInt64(index < b.count ? b[index] : 0) + carry
            result[index] = UInt32(truncatingIfNeeded: sum)
            carry = sum >> 32
        }
        result[result.count - 1] = UInt32(carry)
        return result
    }

    /// a - b, for a >= b.
    static func subtract(_ a: Big, _ b: Big) -> Big {
        var result = a
        var borrow: Int64 = 0
        for index in result.indices {
            var difference = Int64(result[index]) - Int64(index < b.count ? b[index] : 0) - borrow
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 1 << 32 }
            result[index] = UInt32(difference)
        }
        return result
    }

    /// Decimal digits, most significant first ([0] for zero).
    static func decimalDigits(_ number: Big) -> [UInt8] {
        var number = number, digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var chunk = divide(&number, by: 1_000_000_000)
            for _ in 0..<9 {
                digits.append(UInt8(chunk % 10))
                chunk /= 10
            }
        }
        while digits.count > 1 && digits.last == 0 { digits.removeLast() }
        return digits.isEmpty ? [0] : digits.reversed()
    }
}
