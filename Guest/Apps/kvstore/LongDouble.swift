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

    /// A number as strtold reads one (ExactNumber), whole: nil for anything else, for NaN,
    /// and for a value out of range (as Redis's string2ld refuses them).
    init?(text: UnsafeBufferPointer<UInt8>) {
        guard let number = ExactNumber(text: text) else { return nil }
        negative = number.negative
        switch number.magnitude {
        case .infinite: isInfinite = true
        case .tooLarge, .tooSmall: return nil
        case .finite(let digits, let exponent, let sticky):
            guard Big.bitLength(digits) > 0 else { return }
            let value = LongDouble.rounded(digits, exponent: exponent, negative: negative, sticky: sticky)
            guard !value.isInfinite, value.exponent >= LongDouble.smallestExponent else { return nil }
            self = value
        }
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
