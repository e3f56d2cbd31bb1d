import Foundation
import SwiftSyntax
import Toolchain

/// What porting one library takes: the gates it calls and the exports it offers, its
/// calls rewritten into gates, and the data it hands other libraries that must be shared.
public struct PortingPlan: Codable, Sendable {
    /// A direct call into another library, which becomes a call of its gate.
    public struct Call: Codable, Sendable {
        public let file: String
        public let line: Int
        public let library: String
        public let function: String
        public let before: String
        public let after: String
    }

    /// A function declared by hand with another library's export symbol
    /// (`@_extern(c, "lib_export")`): calling it skips the gate. --write calls the gate
    /// instead and removes the declaration.
    public struct HandDeclaration: Codable, Sendable {
        public let file: String
        public let line: Int
        /// Its Swift name, which the calls use.
        public let name: String
        /// The export symbol it binds.
        public let symbol: String
        /// The gate to call instead, `library.export`.
        public let gate: String
    }

    /// Data handed to another library's function that its compartment cannot reach.
    public struct SharedData: Codable, Sendable {
        public enum Kind: String, Codable, Sendable {
            case stack = "private stack"
            case global = "private static data"
            case heap = "private heap"
        }
        public let file: String
        public let line: Int
        /// The variable (or pointer) whose memory is handed over.
        public let name: String
        public let kind: Kind
        public let passedTo: String
        /// Which of the talk's three fixes applies.
        public let fix: String
        /// Whether --write applies the fix.
        public let automatic: Bool
    }

    public let library: String
    public let folder: String
    public var currentUses: [String]
    public var proposedUses: [String]
    public var currentExports: [String]
    public var proposedExports: [String]
    public var calls: [Call] = []
    /// Hand declarations of other libraries' exports: each is a gate skipped.
    public var handDeclarations: [HandDeclaration] = []
    /// This library's functions another library calls or is handed as a callback, and by whom.
    public var usedBy: [String: [String]] = [:]
    /// Parameters of exported functions that are functions: they become FlexOSExport.
    public var callbackParameters: [String] = []
    public var sharedData: [SharedData] = []
    /// Edits by file path; not part of the report.
    var edits: [String: [SourceEdit]] = [:]

    enum CodingKeys: String, CodingKey {
        case library, folder, currentUses, proposedUses, currentExports, proposedExports, calls, handDeclarations,
            usedBy, callbackParameters, sharedData
    }

    public var manifestChanges: Bool { currentUses != proposedUses || currentExports != proposedExports }

    /// Whether anything is left to do: a change --write would make, or data to share by hand.
    /// How many source edits --write makes.
    public var editCount: Int { edits.values.map(\.count).reduce(0, +) }

    public var needsAttention: Bool { manifestChanges || !edits.values.allSatisfy(\.isEmpty) || !sharedData.isEmpty }
}
