/// Integers and scores in the text form Redis uses, without the C library.
enum Numbers {
    /// A decimal integer, as Redis's string2ll reads it: optional '-', digits without a
    /// leading zero (but "0" itself), nothing else: "08" and "-0" are not integers.
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
        var index = 0, negative = false
        if bytes[0] == UInt8(ascii: "-") { negative = true; index = 1 }
        guard index < bytes.count, bytes[index] != UInt8(ascii: "0") else { return nil }
        var magnitude: UInt64 = 0
        while index < bytes.count {
            let digit = UInt64(bytes[index]) &- 48
            guard digit <= 9 else { return nil }
            let (times, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            magnitude = sum
            index += 1
        }
        if negative { return magnitude <= UInt64(Int.max) + 1 ? Int(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int.max) ? Int(magnitude) : nil
    }

    static func integer(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBufferPointer { integer($0) } }

    static func text(_ value: Int) -> [UInt8] {
        var digits: [UInt8] = []
        var magnitude = value.magnitude
        repeat {
            digits.append(UInt8(48 + magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { digits.append(UInt8(ascii: "-")) }
        return digits.reversed()
    }

    /// The whole of `bytes` as strtod reads a number (ExactNumber: decimal, hexadecimal,
    /// inf, infinity; not NaN), correctly rounded: the double, and whether the number lay out
    /// of a double's range (strtod's ERANGE: read as ±infinity or ±0). Short decimals take
    /// Clinger's fast path: digits that fit 2^53 and a power of ten of at most 22, one exact
    /// multiplication or division.
    static func strtod(_ bytes: UnsafeBufferPointer<UInt8>) -> (value: Double, outOfRange: Bool)? {
        if let value = shortDecimal(bytes) { return (value, false) }
        return ExactNumber(text: bytes)?.double
    }

    /// A score as Redis's getDoubleFromObject reads it (ZADD, ZINCRBY, WEIGHTS): one that
    /// strtod reads as ±infinity or 0 out of range is no score (a subnormal one is).
    static func score(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let (value, outOfRange) = strtod(bytes), !(outOfRange && (value.isInfinite || value == 0)) else { return nil }
        return value
    }

    /// [+-]digits[.digits][e[+-]digits] when the fast path reads it exactly; nil to take the
    /// exact path.
    private static func shortDecimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        var index = 0, negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            index = 1
        }
        var mantissa: UInt64 = 0, power = 0, digits = 0, inFraction = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "."), !inFraction {
                inFraction = true
            } else if byte >= 48, byte <= 57 {
                guard mantissa <= (UInt64(1) << 53) / 10 else { return nil }
                mantissa = mantissa * 10 + UInt64(byte - 48)
                digits += 1
                if inFraction { power -= 1 }
            } else {
                break
            }
            index += 1
        }
        guard digits > 0 else { return nil }
        if let (exponent, next) = ExactNumber.exponent(bytes, at: index, marker: UInt8(ascii: "e")) {
            power += exponent
            index = next
        }
        guard index == bytes.count, mantissa <= UInt64(1) << 53, power.magnitude <= 22 else { return nil }
        let scale = exactPowersOfTen[Int(power.magnitude)], value = Double(mantissa)
        let magnitude = power < 0 ? value / scale : value * scale
        return negative ? -magnitude : magnitude
    }

    /// 10^0 ... 10^22: every one exactly a double.
    private static let exactPowersOfTen: [Double] = {
        var powers: [Double] = [1]
        for _ in 1...22 { powers.append(powers.last! * 10) }
        return powers
    }()
}
