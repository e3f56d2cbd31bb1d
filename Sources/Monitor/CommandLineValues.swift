/// Parsing of the sizes and durations users type on command lines.
public enum CommandLineValues {
    /// "64M", "64MiB", "1G", "512K", "4096": bytes. A bare number is bytes.
    public static func byteCount(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : bytes
        }
        return UInt64(text)
    }

    /// "10s", "500ms", "2m", "1.5": seconds. A bare number is seconds.
    public static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0, number.isFinite else { return nil }
            return number * scale
        }
        guard let number = Double(text), number > 0, number.isFinite else { return nil }
        return number
    }

    /// `byteCount`, or an error that says how to write a size (for argument transforms).
    @Sendable public static func parseByteCount(_ text: String) throws(CommandLineValueError) -> UInt64 {
        guard let bytes = byteCount(text) else { throw CommandLineValueError("'\(text)' is not a size; write e.g. 64M, 512K or 1G") }
        return bytes
    }

    /// `seconds`, or an error that says how to write a duration (for argument transforms).
    @Sendable public static func parseSeconds(_ text: String) throws(CommandLineValueError) -> Double {
        guard let seconds = seconds(text) else { throw CommandLineValueError("'\(text)' is not a duration; write e.g. 10s, 500ms or 2m") }
        return seconds
    }
}

/// A size or duration a user mistyped, and how to write it.
public struct CommandLineValueError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
