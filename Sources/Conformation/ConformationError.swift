/// Why a conformation (config.yaml) was refused: where in the file, and what to change.
public struct ConformationError: Error, Equatable, CustomStringConvertible {
    /// The file, or the name given to the text.
    public let file: String
    /// The line the problem is on (1-based), when it has one.
    public let line: Int?
    public let message: String

    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(message)"
    }
}
