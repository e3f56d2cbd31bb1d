/// Parsing of the sizes and durations users type on command lines.
public enum CommandLineValues {
    /// "64M", "64MiB", "1G", "512K", "4096": bytes. A bare number is bytes.
    public static func byteCount(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
            ("B", 1)
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : bytes
        }
        return UInt64(text)
    }

    /// The longest duration accepted (a year): longer ones are typing mistakes, and every
    /// duration must fit in nanoseconds and in the reports' arithmetic.
    public static let maximumSeconds: Double = 365 * 24 * 3600

    /// "10s", "500ms", "2m", "1.5": seconds. A bare number is seconds.
    public static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60)]
        let (number, scale) =
            units.first { text.hasSuffix($0.0) }.map { (Double(text.dropLast($0.0.count)), $0.1) } ?? (Double(text), 1)
        guard let number, number > 0, number.isFinite else { return nil }
        return isValidDuration(number * scale) ? number * scale : nil
    }

    /// Whether `seconds` is a duration a run may have: positive and at most a year.
    public static func isValidDuration(_ seconds: Double) -> Bool {
        seconds > 0 && seconds <= maximumSeconds
    }

    /// `byteCount`, or an error that says how to write a size (for argument transforms).
    @Sendable public static func parseByteCount(_ text: String) throws(CommandLineValueError) -> UInt64 {
        guard let bytes = byteCount(text) else {
            throw CommandLineValueError("'\(text)' is not a size; write e.g. 64M, 512K or 1G")
        }
        return bytes
    }

    /// `seconds`, or an error that says how to write a duration (for argument transforms).
    @Sendable public static func parseSeconds(_ text: String) throws(CommandLineValueError) -> Double {
        guard let seconds = seconds(text) else {
            throw CommandLineValueError("'\(text)' is not a duration; write e.g. 10s, 500ms or 2m (at most a year)")
        }
        return seconds
    }

    /// A halt-polling window in nanoseconds, at most a second; 0 (or `never`): no polling.
    @Sendable public static func parseHaltPolling(_ text: String) throws(CommandLineValueError) -> UInt64 {
        if text == "0" || text == "never" { return 0 }
        guard let seconds = seconds(text), seconds <= 1 else {
            throw CommandLineValueError(
                "'\(text)' is not a halt-polling window; write e.g. 200us or 1ms (at most 1s), or 0")
        }
        return UInt64(seconds * 1e9)
    }

    /// A duration, or 0 (also written `never`) for none (for argument transforms).
    @Sendable public static func parseSecondsOrNever(_ text: String) throws(CommandLineValueError) -> Double {
        if text == "0" || text == "never" { return 0 }
        guard let seconds = seconds(text) else {
            throw CommandLineValueError("'\(text)' is not a duration; write e.g. 300s or 5m, or 0 (never)")
        }
        return seconds
    }

    /// An address to listen on, `HOST:PORT` (for argument transforms).
    @Sendable public static func parseListenAddress(_ text: String) throws(CommandLineValueError) -> ListenAddress {
        do { return try ListenAddress.parse(text) } catch { throw CommandLineValueError(error.description) }
    }
}

/// A size or duration a user mistyped, and how to write it.
public struct CommandLineValueError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
