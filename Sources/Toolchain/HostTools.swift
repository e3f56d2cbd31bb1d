import Foundation

/// The compilers and binary tools of the Swift toolchain that builds guests.
///
/// All come from the directory of the `swiftc` on PATH (or $FLEXOS_SWIFT_BIN): the Swift
/// toolchain ships clang, ld.lld and the llvm binary utilities beside it, and its
/// Embedded Swift libraries below it.
public struct HostTools: Sendable {
    public let swiftc: String
    /// The Swift frontend, which also compiles LLVM IR (see ExclusivityBuild).
    public let swiftFrontend: String
    public let clang: String
    public let linker: String
    public let objcopy: String
    public let nm: String
    /// libswiftUnicodeDataTables.a for x86_64-unknown-none-elf (String's Unicode tables).
    public let unicodeDataTables: String

    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ToolchainError) -> HostTools
    {
        let directory: String
        if let explicit = environment["FLEXOS_SWIFT_BIN"] {
            directory = explicit
        } else {
            let path = (environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
            guard
                let found = path.map({ $0 + "/swiftc" }).first(where: {
                    FileManager.default.isExecutableFile(atPath: $0)
                })
            else {
                throw ToolchainError.toolMissing(
                    "swiftc",
                    hint:
                        "Install Swift 6.x (its Embedded mode builds the guest) and put its bin folder on PATH, or set FLEXOS_SWIFT_BIN."
                )
            }
            directory =
                (URL(fileURLWithPath: found).resolvingSymlinksInPath().path as NSString).deletingLastPathComponent
        }
        func tool(_ name: String) throws(ToolchainError) -> String {
            let path = directory + "/" + name
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolchainError.toolMissing(
                    path,
                    hint: "The Swift toolchain in \(directory) should ship it; use a full toolchain from swift.org.")
            }
            return path
        }
        let tables = directory + "/../lib/swift/embedded/x86_64-unknown-none-elf/libswiftUnicodeDataTables.a"
        guard FileManager.default.fileExists(atPath: tables) else {
            throw ToolchainError.toolMissing(
                tables,
                hint:
                    "This Swift toolchain lacks Embedded Swift for x86_64-unknown-none-elf; use Swift 6.x from swift.org."
            )
        }
        return HostTools(
            swiftc: try tool("swiftc"), swiftFrontend: try tool("swift-frontend"), clang: try tool("clang"),
            linker: try tool("ld.lld"),
            objcopy: try tool("llvm-objcopy"), nm: try tool("llvm-nm"),
            unicodeDataTables: URL(fileURLWithPath: tables).standardized.path)
    }
}
