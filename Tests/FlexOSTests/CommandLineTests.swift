import Foundation
import Testing

/// The built executables, run as a user runs them.
enum Executables {
    /// The folder `swift build` put the products in (beside this test bundle).
    static let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .path

    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    /// Runs `name` (flexosd or flexosctl) with `arguments` and waits for it.
    static func run(_ name: String, _ arguments: [String]) throws -> Result {
        let path = folder + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is missing: run `swift build` before the tests")
        }
        return try runProgram(path, arguments)
    }

    /// Runs a tool and returns its standard output; a failure is an error.
    static func runTool(_ path: String, _ arguments: [String]) throws -> String {
        let result = try runProgram(path, arguments)
        guard result.status == 0 else { throw TestFailure("\(path) failed: \(result.errors)") }
        return result.output
    }

    static func runProgram(_ path: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        nonisolated(unsafe) var errorData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            errors: String(decoding: errorData, as: UTF8.self))
    }
}

@Suite(.tags(.boot), .beyondTheUnitTier) struct FlexosdCommandTests {
    /// `flexosd launch` is the command; `run` is another name for it.
    @Test(arguments: ["launch", "run"]) func launchesHelloAndExitsWithItsCode(_ command: String) throws {
        let folder = try TestImages.build("Guest/Apps/hello").folder
        let result = try Executables.run("flexosd", [command, folder])
        #expect(result.status == 0)
        #expect(result.output.contains("Hello from FlexOS, Embedded Swift in ring 3!"))
        #expect(result.errors.contains("hello exited with code 0"))
    }

    @Test func printsAJSONReport() throws {
        let folder = try TestImages.build("Guest/Apps/hello").folder
        let result = try Executables.run("flexosd", ["launch", "--json", folder + "/hello.elf"])
        #expect(result.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(report?["outcome"] as? String == "exited")
        #expect(report?["exitStatus"] as? Int == 0)
        let compartments = report?["compartments"] as? [[String: Any]]
        #expect((compartments?.first?["hypercalls"] as? [String: Int])?["exit"] == 1)
        #expect(result.errors.contains("Hello from FlexOS"))
    }

    @Test func reportsAFaultAndExits139() throws {
        let result = try Executables.run("flexosd", ["launch", try TestImages.build("Tests/Guests/fault").folder])
        #expect(result.status == 139)
        #expect(result.errors.contains("guest fault in compartment comp1"))
        #expect(result.errors.contains("fault.touchUnmapped"))
    }

    @Test func stopsASpinningGuestAtTheTimeout() throws {
        let result = try Executables.run(
            "flexosd", ["launch", "--timeout", "300ms", try TestImages.build("Tests/Guests/spin").folder])
        #expect(result.status == 124)
        #expect(result.errors.contains("did not exit within 300.0 ms"))
    }

    /// SIGTERM (what a service manager or the demo's clean-up sends) stops the set, which
    /// ends as `stopped` with its report, as `flexosctl stop` ends a daemon's set.
    @Test func aTerminationSignalStopsTheSetWithItsReport() throws {
        let folder = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosd")
        process.arguments = ["launch", "--json", folder]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1)
        process.terminate()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 143)
        let report = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(report?["outcome"] as? String == "stopped", "\(String(decoding: data, as: UTF8.self))")
        #expect((report?["message"] as? String)?.contains("flexosd received Terminated") == true)
    }

    @Test(arguments: [
        (["launch", "/nonexistent/image"], "does not exist"),
        (["run", "/etc/hostname"], "is not an ELF file"),
        (["launch", "Package.swift"], "is not an ELF file"),
        (["launch", "--kvm", "/nonexistent/kvm", "Guest/build/tests/hello"], "this host offers no KVM"),
        (["launch", "--memory", "12K", "Guest/build/tests/hello"], "is too small"),
        (["launch", "--memory", "lots", "Guest/build/tests/hello"], "is not a size"),
        (["launch", "--timeout", "soon", "Guest/build/tests/hello"], "is not a duration"),
        (["launch", "--timeout=-3s", "Guest/build/tests/hello"], "is not a duration"),
        // Values that once crashed flexosd or drew a misleading message.
        (["launch", "--timeout", "1e308", "Guest/build/tests/hello"], "is not a duration"),
        (
            ["launch", "--memory", "18446744073709551615", "Guest/build/tests/hello"],
            "is too large: a compartment can have at most 16 GiB"
        ),
        (
            ["launch", "--shared-memory", "18446744073709551615", "Guest/build/tests/hello"],
            "shared area holds at most 1 GiB"
        ),
        (["launch", "--shared-memory", "2G", "Guest/build/tests/hello"], "shared area holds at most 1 GiB"),
        (["launch", "--memory", "65537K", "Guest/build/tests/hello"], "is not a multiple of the 4 KiB page size"),
        (["launch", "--memory", "-5M", "Guest/build/tests/hello"], "'-5M' is not a size"),
        (["launch", "--kvm", "/dev/null", "Guest/build/tests/hello"], "/dev/null is not the KVM device")
    ])
    func explainsBadInput(arguments: [String], message: String) throws {
        _ = try TestImages.build("Guest/Apps/hello")
        let result = try Executables.run("flexosd", arguments)
        #expect(result.status != 0)
        #expect(result.errors.contains(message), "stderr was: \(result.errors)")
        #expect(result.output.isEmpty)
    }
}

@Suite(.tags(.boot), .beyondTheUnitTier) struct FlexosctlCommandTests {
    @Test func buildsAnApplicationFolder() throws {
        let output = testBuildFolder + "/cli-hello"
        let result = try Executables.run("flexosctl", ["build", "Guest/Apps/hello", "--output", output, "--json"])
        #expect(result.status == 0, "\(result.errors)")
        let summary = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(summary?["mechanism"] as? String == "fcalls")
        #expect(FileManager.default.fileExists(atPath: output + "/hello.elf"))
        #expect(FileManager.default.fileExists(atPath: output + "/manifest.json"))
        #expect(result.errors.contains("linking"))
    }

    /// A full disk once read `NSCocoaErrorDomain Code=640`, or a linker's crash, and left a
    /// half-written image: the build names the full disk and removes what it wrote of the image.
    @Test func aFullDiskIsNamedAndLeavesNoImage() throws {
        guard getuid() == 0 else {
            throw TestFailure("this test mounts a small tmpfs: run the tests as root, as CI does")
        }
        let mountPoint = NSTemporaryDirectory() + "flexos-full-\(getpid())"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        _ = try Executables.runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=1200k", "tmpfs", mountPoint])
        defer {
            _ = try? Executables.runTool("/bin/umount", [mountPoint])
            rmdir(mountPoint)
        }
        let result = try Executables.run(
            "flexosctl", ["build", "Guest/Apps/hello", "--output", mountPoint + "/hello", "--quiet"])
        #expect(result.status == 1)
        #expect(result.errors.contains("the disk that holds \(mountPoint)/hello is full"), "\(result.errors)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mountPoint + "/hello")) ?? []
        #expect(!left.contains { $0.hasPrefix("hello.elf") }, "\(left)")
    }

    @Test func buildsIntoARelativeOutputFolder() throws {
        let relative = "Guest/build/tests/cli-relative"
        let result = try Executables.run("flexosctl", ["build", "Guest/Apps/hello", "--output", relative, "--quiet"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(FileManager.default.fileExists(atPath: repositoryRoot + "/" + relative + "/hello.elf"))
    }

    @Test(arguments: [
        (["build", "Guest/Apps/nothing-here"], "neither a conformation"),
        (["build", "Configs/none.yaml"], "no such file")
    ])
    func explainsBadInput(arguments: [String], message: String) throws {
        let result = try Executables.run("flexosctl", arguments)
        #expect(result.status == 1)
        #expect(result.errors.contains(message), "stderr was: \(result.errors)")
    }
}
