import Conformation
import Foundation
import GuestImage
import GuestMachine
import KVM
import Monitor
import NetworkDevice
import Synchronization
import Toolchain

/// The repository this test file belongs to.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Where test builds go (ignored by git).
let testBuildFolder = repositoryRoot + "/Guest/build/tests"

/// Opens /dev/kvm for a boot test. Where it cannot be opened the test fails with a
/// message that says so: boot tests never pass by skipping.
func requireKVM() throws -> Hypervisor {
    try refuseInTheUnitTier("open /dev/kvm")
    do { return try Hypervisor() } catch {
        throw TestFailure("boot tests need /dev/kvm, and it is not usable here: \(error)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Builds guest images once per test process, whatever order tests run in.
enum TestImages {
    private static let builds = Mutex<[String: Result<BuildResult, any Error>]>([:])
    private static let buildLock = NSLock()

    /// The image set built from `target` (an application folder or a conformation,
    /// relative to the repository), built on first use.
    static func build(_ target: String) throws -> BuildResult {
        try refuseInTheUnitTier("build a guest (\(target))")
        buildLock.lock()
        defer { buildLock.unlock() }
        if let done = builds.withLock({ $0[target] }) { return try done.get() }
        let result = Result { try buildNow(target) }
        builds.withLock { $0[target] = result }
        return try result.get()
    }

    private static func buildNow(_ target: String) throws -> BuildResult {
        let path = repositoryRoot + "/" + target
        var tree = SourceTree(root: repositoryRoot)
        tree.librarySearchPath.insert(URL(fileURLWithPath: path).deletingLastPathComponent().path, at: 0)
        let plan: BuildPlan
        if target.hasSuffix(".yaml") {
            let conformation = try Conformation.load(path: path)
            plan = try BuildPlan(
                conformation: conformation, application: conformation.application ?? "", tree: tree, file: path)
        } else {
            let name = URL(fileURLWithPath: path).lastPathComponent
            plan = try BuildPlan(
                conformation: .single(name: name, application: path), application: path, tree: tree, file: path)
        }
        let builder = ImageBuilder(tools: try HostTools.locate(), tree: tree)
        return try builder.build(plan, into: testBuildFolder + "/" + plan.name)
    }
}

/// Collects what guests print.
final class CapturedConsole: ConsoleSink, @unchecked Sendable {
    private let lines = Mutex<[(compartment: String, text: String)]>([])

    func write(_ bytes: [UInt8], compartment: String, index: Int) {
        let text = String(decoding: bytes, as: UTF8.self)
        lines.withLock { $0.append((compartment, text)) }
    }

    var text: String { lines.withLock { $0.map(\.text).joined() } }

    func text(of compartment: String) -> String {
        lines.withLock { $0.filter { $0.compartment == compartment }.map(\.text).joined() }
    }
}

/// Held while a test creates VMs, so one test can count kernel objects without another
/// test's VMs in the count.
let vmLock = NSRecursiveLock()

/// The VM-related file descriptors this process holds (KVM VMs and vCPUs, guest memfds).
func openVMDescriptors() -> [String] {
    let folder = "/proc/self/fd"
    return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { entry in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + entry) else {
            return nil
        }
        // The hypervisor handle (/dev/kvm) is shared by tests, and the fuzz targets keep
        // static memory of their own (memfds named flexos-fuzz-* and flexos:fuzz:*): neither is a VM of a run.
        guard !target.hasSuffix("/dev/kvm"), !target.contains("fuzz") else { return nil }
        return target.contains("kvm") || target.contains("memfd:flexos") ? target : nil
    }
}

/// Boots the image set at `path` and waits for its end.
func boot(_ path: String, timeout: Double = 20, memory: UInt64 = ImageSetLayout.defaultMemory) throws -> (
    report: RunReport, console: CapturedConsole
) {
    vmLock.lock()
    defer { vmLock.unlock() }
    let hypervisor = try requireKVM()
    let console = CapturedConsole()
    let run = try ImageSetRun(
        try ImageSet.open(path), options: LaunchOptions(memory: memory), hypervisor: hypervisor, console: console,
        devices: deviceProviders)
    return (run.wait(timeout: timeout), console)
}

/// The devices flexosd registers with its KVM engine, for tests that boot through ImageSetRun.
let deviceProviders: [any DeviceProvider] = [NetworkDeviceProvider()]
