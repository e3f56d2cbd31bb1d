/// Why an exploration could not start or go on, with what to change.
public enum ExplorationError: Error, Equatable, CustomStringConvertible {
    /// The space file is wrong: where, and what to write instead.
    case space(file: String, line: Int?, String)
    /// The results folder cannot be read or written.
    case results(path: String, String)
    /// Something the exploration runs is missing (flexosd, a benchmark tool).
    case missingTool(String)

    public var description: String {
        switch self {
        case .space(let file, let line, let message): "\(file)\(line.map { ":\($0)" } ?? ""): \(message)"
        case .results(let path, let message): "\(path): \(message)"
        case .missingTool(let message): message
        }
    }
}
