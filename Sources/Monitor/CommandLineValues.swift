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
}
