/// Integers and scores in the text form Redis uses, without the C library.
enum Numbers {
    /// A decimal integer, as Redis's string2ll reads it: optional '-', digits, nothing else.
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var index = 0, negative = false
        if bytes[0] == UInt8(ascii: "-") { negative = true; index = 1 }
        guard index < bytes.count else { return nil }
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

    /// A score: [+-]digits[.digits][e[+-]digits], or inf, +inf, -inf.
    static func score(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        guard !bytes.isEmpty, bytes.count <= 64 else { return nil }
        var index = 0, sign = 1.0
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            sign = bytes[0] == UInt8(ascii: "-") ? -1 : 1
            index = 1
        }
        if bytes.count - index == 3 && (bytes[index] | 0x20) == UInt8(ascii: "i") && (bytes[index + 1] | 0x20) == UInt8(ascii: "n")
            && (bytes[index + 2] | 0x20) == UInt8(ascii: "f") { return sign * Double.infinity }
        var value = 0.0, digits = 0, scale = 1.0
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { value = value * 10 + Double(bytes[index] - 48); index += 1; digits += 1 }
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                scale /= 10
                value += Double(bytes[index] - 48) * scale
                index += 1
                digits += 1
            }
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
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57, exponent < 400 {
                exponent = exponent * 10 + Int(bytes[index] - 48)
                index += 1
                exponentDigits += 1
            }
            guard exponentDigits > 0 else { return nil }
            for _ in 0..<exponent { value = exponentSign > 0 ? value * 10 : value / 10 }
        }
        return index == bytes.count ? sign * value : nil
    }
}
