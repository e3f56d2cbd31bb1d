/// A number as C's strtod and strtold read one, kept exact until it is rounded: to a double
/// for scores (Numbers.score) or to an extended float for INCRBYFLOAT (LongDouble). The
/// forms: an optional sign, then `inf` or `infinity` (either case), a hexadecimal `0x` number
/// with an optional `p` power of two, or decimal digits with an optional point and `e` power
/// of ten. NaN is not read: every command that reads a number refuses it.
struct ExactNumber {
    enum Magnitude {
        /// magnitude × 2^exponent; `sticky`: a nonzero part below its last bit was dropped
        /// (a decimal fraction's division).
        case finite(Big, exponent: Int, sticky: Bool)
        case infinite
        /// So far past either end of every float's range that only the side matters (a power
        /// of ten of 5000 or more, or of -10000 or less, with nonzero digits).
        case tooLarge, tooSmall
    }

    var negative = false
    var magnitude = Magnitude.finite([0], exponent: 0, sticky: false)

    /// Longer texts are refused: reading one costs time in its square.
    static let maximumLength = 5 * 1024

    /// The whole of `text` as a number; nil for anything else.
    init?(text: UnsafeBufferPointer<UInt8>) {
        guard !text.isEmpty, text.count < ExactNumber.maximumLength else { return nil }
        var index = 0
        if text[0] == UInt8(ascii: "-") || text[0] == UInt8(ascii: "+") {
            negative = text[0] == UInt8(ascii: "-")
            index = 1
        }
        let rest = text[index...].lazy.map { $0 | 0x20 }
        if rest.elementsEqual("inf".utf8) || rest.elementsEqual("infinity".utf8) {
            magnitude = .infinite
            return
        }
        if index + 2 < text.count, text[index] == UInt8(ascii: "0"), text[index + 1] | 0x20 == UInt8(ascii: "x") {
            guard let hexadecimal = ExactNumber.hexadecimal(text, from: index + 2) else { return nil }
            magnitude = hexadecimal
            return
        }
        guard let decimal = ExactNumber.decimal(text, from: index) else { return nil }
        magnitude = decimal
    }

    /// Digits, a point, digits, `e` and a power of ten: digits / 10^-power, divided with 67
    /// bits or more kept (enough to round to 64, and to 53).
    private static func decimal(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Magnitude? {
        var digits: Big = [0], power = 0, digitCount = 0, index = start
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
        if let (exponent, next) = ExactNumber.exponent(text, at: index, marker: UInt8(ascii: "e")) {
            power += exponent
            index = next
        }
        guard index == text.count else { return nil }
        guard Big.bitLength(digits) > 0 else { return .finite([0], exponent: 0, sticky: false) }
        if power >= 5000 { return .tooLarge }
        if power <= -10000 { return .tooSmall }
        if power >= 0 {
            for _ in 0..<power { Big.multiply(&digits, by: 10) }
            return .finite(digits, exponent: 0, sticky: false)
        }
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
        return .finite(quotient, exponent: -shift, sticky: inexact)
    }

    /// Hexadecimal digits after the `0x`, a point, `p` and a power of two: exact.
    private static func hexadecimal(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Magnitude? {
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
        if let (power, next) = ExactNumber.exponent(text, at: index, marker: UInt8(ascii: "p")) {
            exponent += power
            index = next
        }
        guard index == text.count else { return nil }
        return .finite(digits, exponent: exponent, sticky: false)
    }

    /// An exponent at `index`: `marker` (either case), an optional sign, at least one digit
    /// (beyond a million it only matters that it is out of range); the value and the index
    /// after it, or nil where strto* would stop before the marker.
    static func exponent(_ text: UnsafeBufferPointer<UInt8>, at index: Int, marker: UInt8) -> (Int, Int)? {
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

    /// The nearest double (ties to even, subnormals with the bits they have), and whether
    /// strtod says ERANGE: past the largest double (read as ±infinity), or below the
    /// smallest normal one and not exact (a subnormal, or ±0).
    var double: (value: Double, outOfRange: Bool) {
        let sign: FloatingPointSign = negative ? .minus : .plus
        switch magnitude {
        case .infinite: return (negative ? -.infinity : .infinity, false)
        case .tooLarge: return (negative ? -.infinity : .infinity, true)
        case .tooSmall: return (Double(sign: sign, exponent: 0, significand: 0), true)
        case .finite(let digits, let exponent, let sticky):
            let bits = Big.bitLength(digits)
            guard bits > 0 else { return (Double(sign: sign, exponent: 0, significand: 0), false) }
            // The last bit kept: 53 significant bits, none below 2^-1074.
            let last = max(exponent + bits - 53, -1074)
            var significand: UInt64, inexact = sticky
            if last <= exponent {
                significand = Big.bits(digits, from: 0, count: bits) << UInt64(exponent - last)
            } else {
                let drop = last - exponent
                significand = drop < bits ? Big.bits(digits, from: drop, count: bits - drop) : 0
                let half = drop <= bits && Big.bit(digits, drop - 1)
                let below = sticky || Big.hasBits(digits, below: min(drop - 1, bits))
                if half && (below || significand & 1 == 1) { significand += 1 }
                inexact = half || below
            }
            let value = Double(sign: sign, exponent: last, significand: Double(significand))
            let tiny = last == -1074 && significand < UInt64(1) << 52
            return (value, value.isInfinite || tiny && inexact)
        }
    }
}
