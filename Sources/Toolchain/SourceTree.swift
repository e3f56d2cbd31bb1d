import Foundation

/// The FlexOS repository as the build sees it: the guest runtime, the ABI header, and
/// the folders libraries are looked up in.
public struct SourceTree: Sendable {
    public let root: String
    /// Folders searched, in order, for a library's folder.
    public var librarySearchPath: [String]

    public init(root: String, extraLibraryFolders: [String] = []) {
        self.root = root
        librarySearchPath = [root + "/Guest/Libraries", root + "/Guest/Apps"] + extraLibraryFolders
    }

    /// The tree that contains `start` (or one of its parents).
    public static func locate(from start: String = FileManager.default.currentDirectoryPath) throws(ToolchainError)
        -> SourceTree
    {
        var directory = URL(fileURLWithPath: start).standardized
        while true {
            if SourceTree.isRoot(directory.path) { return SourceTree(root: directory.path) }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { throw ToolchainError.sourceTreeNotFound(searchedFrom: start) }
            directory = parent
        }
    }

    static func isRoot(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/Guest/Runtime/Sources")
            && FileManager.default.fileExists(atPath: path + "/Sources/CFlexOSABI/include/flexos_abi.h")
    }

    public var runtimeSources: [String] {
        let folder = root + "/Guest/Runtime/Sources"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix(".swift") }.sorted().map { folder + "/" + $0 }
    }

    public var runtimeSupportSource: String { root + "/Guest/Runtime/Support/support.c" }
    public var runtimeInclude: String { root + "/Guest/Runtime/Support/include" }
    public var abiInclude: String { root + "/Sources/CFlexOSABI/include" }
    public var defaultBuildFolder: String { root + "/Guest/build" }

    /// The library called `name`, or the library in folder `name` if it is a path.
    public func library(_ name: String) throws(ToolchainError) -> LibraryDescriptor {
        if name.contains("/") {
            guard FileManager.default.fileExists(atPath: name + "/" + LibraryDescriptor.fileName) else {
                throw ToolchainError.unknownLibrary(name, searched: [name])
            }
            return try LibraryDescriptor.load(directory: URL(fileURLWithPath: name).standardized.path)
        }
        for folder in librarySearchPath
        where FileManager.default.fileExists(atPath: "\(folder)/\(name)/\(LibraryDescriptor.fileName)") {
            return try LibraryDescriptor.load(directory: "\(folder)/\(name)")
        }
        throw ToolchainError.unknownLibrary(name, searched: librarySearchPath)
    }
}
