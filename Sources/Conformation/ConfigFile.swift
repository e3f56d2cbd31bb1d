import Foundation
import GuestImage

/// A small YAML file a user hands flexosctl (a conformation, an exploration space): read
/// with the image loader's checks (a regular file, refused when too large before anything
/// is read, so a FIFO or a huge file never blocks or fills memory), as UTF-8 text.
public enum ConfigFile {
    /// Why a file could not be read, in words for the user.
    public struct ReadError: Error {
        public let message: String
    }

    /// The text at `path`.
    public static func text(at path: String, limit: Int) throws(ReadError) -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw ReadError(message: "no such file") }
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: limit) } catch {
            if case .cannotOpen(_, let reason) = error { throw ReadError(message: "cannot be read: \(reason)") }
            throw ReadError(message: "cannot be read: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ReadError(message: "is not UTF-8 text") }
        return text
    }

    /// The name a file gives what it describes: its file name without `.yaml` or `.yml`.
    public static func name(of path: String) -> String {
        let base = (path as NSString).lastPathComponent
        return base.hasSuffix(".yaml")
            ? String(base.dropLast(5)) : base.hasSuffix(".yml") ? String(base.dropLast(4)) : base
    }
}
