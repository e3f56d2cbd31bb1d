/// Doubles written as Redis 7.0 writes scores (d2string): integers below 2^52 as integers,
/// `inf` and `-inf`, and everything else as C's `%.17g`, from the double's exact decimal
/// value rounded to 17 significant digits, ties to even (as glibc does).
enum DoubleText {
    static func text(_ value: Double) -> [UInt8] {
        if value.isNaN { return Array("nan".utf8) }
        if value.isInfinite { return Array((value < 0 ? "-inf" : "inf").utf8) }
        if value == 0 { return Array((value.sign == .minus ? "-0" : "0").utf8) }
        if value.magnitude < 4_503_599_627_370_496, Double(Int(value)) == value { return Numbers.text(Int(value)) }
        var (digits, exponent) = exactDecimal(value.magnitude)
        (digits, exponent) = rounded(digits, exponent, to: 17)
        while digits.count > 1 && digits.last == 0 { digits.removeLast() }
        var out: [UInt8] = value < 0 ? [UInt8(ascii: "-")] : []
        if exponent < -4 || exponent >= 17 {
            out.append(48 + digits[0])
            if digits.count > 1 { out.append(UInt8(ascii: ".")); out += digits.dropFirst().map { 48 + $0 } }
            out += [UInt8(ascii: "e"), UInt8(ascii: exponent < 0 ? "-" : "+")]
            let magnitude = Numbers.text(abs(exponent))
            if magnitude.count < 2 { out.append(48) }
            out += magnitude
        } else if exponent < 0 {
            out += [48, UInt8(ascii: ".")] + [UInt8](repeating: 48, count: -exponent - 1) + digits.map { 48 + $0 }
        } else {
            for index in 0...exponent { out.append(48 + (index < digits.count ? digits[index] : 0)) }
            if digits.count > exponent + 1 { out.append(UInt8(ascii: ".")); out += digits[(exponent + 1)...].map { 48 + $0 } }
        }
        return out
    }

    /// The exact decimal digits of a positive finite double, and the power of ten of the
    /// first: value = d0.d1d2... × 10^exponent.
    private static func exactDecimal(_ value: Double) -> ([UInt8], Int) {
        var mantissa = value.significandBitPattern | (value.isNormal ? 1 << 52 : 0)
        var binaryExponent = Int(value.exponentBitPattern) - 1075 + (value.isNormal ? 0 : 1)
        while mantissa & 1 == 0 && binaryExponent < 0 { mantissa >>= 1; binaryExponent += 1 }
        // value = mantissa × 2^binaryExponent = (mantissa × 5^k) / 10^k for k = -binaryExponent.
        var number = Big(mantissa)
        let scale = max(-binaryExponent, 0)
        for _ in 0..<scale { Big.multiply(&number, by: 5) }
        for _ in 0..<max(binaryExponent, 0) { Big.multiply(&number, by: 2) }
        let digits = Big.decimalDigits(number)
        return (digits, digits.count - 1 - scale)
    }

    /// `digits` rounded to `count` significant digits, ties to even.
    private static func rounded(_ digits: [UInt8], _ exponent: Int, to count: Int) -> ([UInt8], Int) {
        guard digits.count > count else { return (digits, exponent) }
        var kept = Array(digits[..<count])
        let rest = digits[count...]
        let roundUp = rest.first! > 5 || rest.first! == 5 && (rest.dropFirst().contains { $0 != 0 } || kept.last! % 2 == 1)
        guard roundUp else { return (kept, exponent) }
        var index = kept.count - 1
        while index >= 0 {
            if kept[index] < 9 { kept[index] += 1; return (kept, exponent) }
            kept[index] = 0
            index -= 1
        }
        return ([1] + kept.dropLast(), exponent + 1)
    }
}
