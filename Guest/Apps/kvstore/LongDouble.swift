/// The long doubles of INCRBYFLOAT and HINCRBYFLOAT. Redis reads their operands with
/// strtold, adds them as x86's 80-bit extended floats (a 64-bit significand) and writes the
/// sum as `%.17Lf` with the trailing zeros cut. The guest has no C library and no hardware
/// long double in Embedded Swift, so this does the same exactly, with integers of any size:
/// read correctly rounded (decimal and hexadecimal, as strtold), added exactly then rounded
/// once (as the FPU rounds), written from the exact decimal value.
struct LongDouble {
    var negative = false
    /// value = significand × 2^exponent, the significand's top bit set (or it is 0).
    var significand: UInt64 = 0
    var exponent = 0
    var isInfinite = false

    init(negative: Bool = false, significand: UInt64 = 0, exponent: Int = 0, isInfinite: Bool = false) {
        (self.negative, self.significand, self.exponent, self.isInfinite) = (negative, significand, exponent, isInfinite)
    }

    static let zero = LongDouble()
    /// Extended floats: the largest finite is just under 2^16384; the smallest subnormal is
    /// 2^-16445, and strtold refuses (rounds to zero) only what lies below half of it. Values
    /// that small keep their whole significand here: they print as 0 all the same.
    private static let largestExponent = 16384 - 64
    private static let smallestExponent = -16446 - 63

    /// A number as strtold reads one (decimal, `inf`, `infinity`), whole: nil for anything
    /// else, for NaN, and for a value out of range (as Redis's string2ld refuses them).
    init?(text: UnsafeBufferPointer<UInt8>) {
        guard !text.isEmpty, text.count < 5 * 1024 else { return nil }
        var index = 0
        if text[0] == UInt8(ascii: "-") || text[0] == UInt8(ascii: "+") {
            negative = text[0] == UInt8(ascii: "-")
            index = 1
        }
        let rest = text[index...].map { $0 | 0x20 }
        if rest.elementsEqual("inf".utf8) || rest.elementsEqual("infinity".utf8) {
            isInfinite = true
            return
        }
        if index + 2 < text.count, text[index] == UInt8(ascii: "0"), text[index + 1] | 0x20 == UInt8(ascii: "x") {
            guard let value = LongDouble.hexadecimal(text, from: index + 2, negative: negative) else { return nil }
            self = value
            return
        }
        var digits: Big = [0], power = 0, digitCount = 0
        while index < text.count, text[index] >= 48, text[index] <= 57 {
            Big.multiply(&digits, by: 10, adding: UInt64(text[index] - 48))
            index += 1
            digitCount += 1
        }
        if index < text.count && text[index] == UInt8(ascii: ".") {
            index += 1
            while index < text.count, text[index] >= 48, text[index] <= 57 {
                Big.multiply(&digits, by: 10, adding: UInt64(text[index] - 48))
                index += 1
                digitCount += 1
                power -= 1
            }
        }
        guard digitCount > 0 else { return nil }
        if let (exponent, next) = LongDouble.exponent(text, at: index, marker: UInt8(ascii: "e")) {
            power += exponent
            index = next
        }
        guard index == text.count else { return nil }
        guard Big.bitLength(digits) > 0 else { return }
        // Beyond these the value is surely out of range either way (strtold's ERANGE).
        guard power < 5000, power > -10000 else { return nil }
        let value: LongDouble
        if power >= 0 {
            for _ in 0..<power { Big.multiply(&digits, by: 10) }
            value = LongDouble.rounded(digits, exponent: 0, negative: negative)
        } else {
            // digits / 10^-power: scaled by 2^s first so that the quotient has 67 bits or more.
            let shift = max(0, 67 + (-power * 3322 + 999) / 1000 - Big.bitLength(digits))
            var quotient = Big.shiftedLeft(digits, by: shift)
            var inexact = false
            var left = -power
            while left > 0 {
                let step = min(left, 9)
                var divisor: UInt64 = 1
                for _ in 0..<step { divisor *= 10 }
                if Big.divide(&quotient, by: divisor) != 0 { inexact = true }
                left -= step
            }
            value = LongDouble.rounded(quotient, exponent: -shift, negative: negative, sticky: inexact)
        }
        guard !value.isInfinite, value.exponent >= LongDouble.smallestExponent else { return nil }
        self = value
    }

    /// strtold's hexadecimal form after its `0x`: hex digits, a point, `p` and a power of two.
    private static func hexadecimal(_ text: UnsafeBufferPointer<UInt8>, from start: Int, negative: Bool) -> LongDouble? {
        func hexDigit(_ byte: UInt8) -> UInt64? {
            switch byte {
            case 48...57: return UInt64(byte - 48)
            case 97...102, 65...70: return UInt64(byte | 0x20) - 87
            default: return nil
            }
        }
        var digits: Big = [0], exponent = 0, digitCount = 0, index = start, inFraction = false
        while index < text.count {
            if text[index] == UInt8(ascii: "."), !inFraction {
                inFraction = true
            } else if let digit = hexDigit(text[index]) {
                Big.multiply(&digits, by: 16, adding: digit)
                digitCount += 1
                if inFraction { exponent -= 4 }
            } else {
                break
            }
            index += 1
        }
        guard digitCount > 0 else { return nil }
        if let (power, next) = LongDouble.exponent(text, at: index, marker: UInt8(ascii: "p")) {
            exponent += power
            index = next
        }
        guard index == text.count else { return nil }
        guard Big.bitLength(digits) > 0 else { return LongDouble(negative: negative) }
        let value = rounded(digits, exponent: exponent, negative: negative)
        guard !value.isInfinite, value.exponent >= smallestExponent else { return nil }
        return value
    }

    /// An exponent at `index`: `marker` (either case), an optional sign, at least one digit
    /// (beyond a million it only matters that it is out of range); the value and the index
    /// after it, or nil where strtold would stop before the marker.
    private static func exponent(_ text: UnsafeBufferPointer<UInt8>, at index: Int, marker: UInt8) -> (Int, Int)? {
        guard index + 1 < text.count, text[index] | 0x20 == marker else { return nil }
        var next = index + 1, value = 0, digits = 0, negative = false
        if text[next] == UInt8(ascii: "-") || text[next] == UInt8(ascii: "+") {
            negative = text[next] == UInt8(ascii: "-")
            next += 1
        }
        while next < text.count, text[next] >= 48, text[next] <= 57 {
            value = min(value * 10 + Int(text[next] - 48), 1_000_000)
            next += 1
            digits += 1
        }
        return digits > 0 ? (negative ? -value : value, next) : nil
    }

    /// The sum, rounded once to the nearest extended float (ties to even); infinite when it
    /// overflows, or when either side is infinite.
    static func + (a: LongDouble, b: LongDouble) -> LongDouble {
        if a.isInfinite || b.isInfinite { return LongDouble(isInfinite: true) }
        if a.significand == 0 { return b }
        if b.significand == 0 { return a }
        let base = min(a.exponent, b.exponent)
        let x = Big.shiftedLeft(Big(a.significand), by: a.exponent - base)
        let y = Big.shiftedLeft(Big(b.significand), by: b.exponent - base)
        if a.negative == b.negative { return rounded(Big.add(x, y), exponent: base, negative: a.negative) }
        let order = Big.compare(x, y)
        if order == 0 { return .zero }
        return order > 0
            ? rounded(Big.subtract(x, y), exponent: base, negative: a.negative)
            : rounded(Big.subtract(y, x), exponent: base, negative: b.negative)
    }

    /// `magnitude × 2^exponent` rounded to 64 significant bits, ties to even; `sticky` says
    /// that something below `magnitude`'s last bit was dropped before.
    private static func rounded(_ magnitude: Big, exponent: Int, negative: Bool, sticky: Bool = false) -> LongDouble {
        let bits = Big.bitLength(magnitude)
        guard bits > 0 else { return .zero }
        var significand: UInt64 = 0
        var newExponent = exponent + bits - 64
        if bits <= 64 {
            significand = Big.bits(magnitude, from: 0, count: bits) << UInt64(64 - bits)
        } else {
            significand = Big.bits(magnitude, from: bits - 64, count: 64)
            let half = Big.bit(magnitude, bits - 65)
            let below = sticky || Big.hasBits(magnitude, below: bits - 65)
            if half && (below || significand & 1 == 1) {
                significand &+= 1
                if significand == 0 {
                    significand = 1 << 63
                    newExponent += 1
                }
            }
        }
        guard newExponent <= largestExponent else { return LongDouble(isInfinite: true) }
        return LongDouble(negative: negative, significand: significand, exponent: newExponent)
    }

    /// As Redis writes it: `%.17Lf` (17 decimals of the exact value, ties to even), then the
    /// trailing zeros and a bare point cut, and `-0` written `0`.
    var text: [UInt8] {
        var scaled = Big(significand)
        for _ in 0..<17 { Big.multiply(&scaled, by: 10) }
        if exponent >= 0 {
            scaled = Big.shiftedLeft(scaled, by: exponent)
        } else {
            let drop = -exponent
            let half = Big.bit(scaled, drop - 1)
            let below = Big.hasBits(scaled, below: drop - 1)
            scaled = Big.shiftedRight(scaled, by: drop)
            if half && (below || Big.bit(scaled, 0)) { Big.multiply(&scaled, by: 1, adding: 1) }
        }
        var digits = Big.decimalDigits(scaled)
        if digits.count < 18 { digits = [UInt8](repeating: 0, count: 18 - digits.count) + digits }
        var fraction = Array(digits.suffix(17))
        while fraction.last == 0 { fraction.removeLast() }
        let whole = digits.dropLast(17)
        var out: [UInt8] = negative && !(whole.allSatisfy { $0 == 0 } && fraction.isEmpty) ? [UInt8(ascii: "-")] : []
        out += whole.map { 48 + $0 }
        if !fraction.isEmpty { out += [UInt8(ascii: ".")] + fraction.map { 48 + $0 } }
        return out
    }
}
