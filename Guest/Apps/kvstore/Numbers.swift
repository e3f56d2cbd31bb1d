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

    /// A score: [+-]digits[.digits][e[+-]digits], or inf, +inf, -inf. Correctly rounded (as
    /// strtod) when the digits fit 2^53 and the power of ten is at most 22 either way (one
    /// exact multiplication or division: Clinger's fast path) and for every integer value;
    /// otherwise (many digits with a small power) within a few ulps.
    static func score(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        guard !bytes.isEmpty, bytes.count <= 64 else { return nil }
        var index = 0, sign = 1.0
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            sign = bytes[0] == UInt8(ascii: "-") ? -1 : 1
            index = 1
        }
        if bytes.count - index == 3 && (bytes[index] | 0x20) == UInt8(ascii: "i") && (bytes[index + 1] | 0x20) == UInt8(ascii: "n")
            && (bytes[index + 2] | 0x20) == UInt8(ascii: "f") { return sign * Double.infinity }
        // The digits as one integer while it stays exact, and the power of ten they are scaled
        // by; every digit as a large integer, for the exact path.
        var mantissa: UInt64 = 0, exact = true, digits = 0, power = 0
        var large: [UInt32] = [0], largePower = 0
        func take(_ digit: UInt8, fraction: Bool) {
            Big.multiply(&large, by: 10, adding: UInt64(digit))
            if fraction { largePower -= 1 }
            digits += 1
            guard exact else { if !fraction { power += 1 }; return }
            if mantissa <= (UInt64(1) << 53) / 10 {
                mantissa = mantissa * 10 + UInt64(digit)
                if fraction { power -= 1 }
            } else {
                exact = false
                if !fraction { power += 1 }
            }
        }
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { take(bytes[index] - 48, fraction: false); index += 1 }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { take(bytes[index] - 48, fraction: true); index += 1 }
        }
        guard digits > 0 else { return nil }
        if index < bytes.count && (bytes[index] | 0x20) == UInt8(ascii: "e") {
            index += 1
            var exponentSign = 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+")) {
                exponentSign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                index += 1
            }
            var exponent = 0, exponentDigits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if exponent < 100_000 { exponent = exponent * 10 + Int(bytes[index] - 48) }
                index += 1
                exponentDigits += 1
            }
            guard exponentDigits > 0 else { return nil }
            power += exponentSign * exponent
            largePower += exponentSign * exponent
        }
        guard index == bytes.count else { return nil }
        if exact && power.magnitude <= 22 {
            let scale = exactPowersOfTen[Int(power.magnitude)], value = Double(mantissa)
            return sign * (power < 0 ? value / scale : value * scale)
        }
        if largePower >= 0 {
            // An integer, however large: exact, then rounded once.
            for _ in 0..<min(largePower, 400) { Big.multiply(&large, by: 10) }
            return sign * DoubleText.double(large)
        }
        // Small and long: within a few ulps (strtod's exact division is not written yet).
        var value = Double(mantissa)
        for _ in 0..<min(power.magnitude, 400) { value = power < 0 ? value / 10 : value * 10 }
        return sign * value
    }

    /// 10^0 ... 10^22: every one exactly a double.
    private static let exactPowersOfTen: [Double] = {
        var powers: [Double] = [1]
        for _ in 1...22 { powers.append(powers.last! * 10) }
        return powers
    }()
}
