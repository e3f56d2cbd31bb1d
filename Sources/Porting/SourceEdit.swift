import SwiftSyntax

/// A replacement of a byte range of a file. The helper changes files only by such edits,
/// so every byte it does not mean to change stays as it was.
struct SourceEdit: Equatable {
    let range: Range<Int>
    let replacement: String

    static func replacing(_ node: some SyntaxProtocol, with text: String) -> SourceEdit {
        SourceEdit(
            range: node.positionAfterSkippingLeadingTrivia.utf8Offset..<node.endPositionBeforeTrailingTrivia.utf8Offset,
            replacement: text)
    }

    /// Removes `node` with the comments and blank lines before it.
    static func removing(_ node: some SyntaxProtocol) -> SourceEdit {
        SourceEdit(range: node.position.utf8Offset..<node.endPositionBeforeTrailingTrivia.utf8Offset, replacement: "")
    }

    static func inserting(_ text: String, at position: AbsolutePosition) -> SourceEdit {
        SourceEdit(range: position.utf8Offset..<position.utf8Offset, replacement: text)
    }

    /// `text` with `edits` applied (they must not overlap).
    static func apply(_ edits: [SourceEdit], to text: String) -> String {
        var bytes = Array(text.utf8)
        for edit in edits.sorted(by: {
            ($0.range.lowerBound, $0.range.upperBound) > ($1.range.lowerBound, $1.range.upperBound)
        }) {
            bytes.replaceSubrange(edit.range, with: Array(edit.replacement.utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension SyntaxProtocol {
    /// The node's source without its surrounding trivia.
    var code: String { trimmedDescription }
}
