import Foundation
import Hosts
import Testing

/// `flexosctl hosts`: libvirt's fake host (test:///default, no daemon), a real libvirtd on
/// this machine, and the /dev/kvm probe when no libvirtd answers.
@Suite(.serialized) struct HostsTests {
    static func hosts(_ arguments: [String]) throws -> [HostDescription] {
        let result = try Executables.run("flexosctl", ["hosts", "--json"] + arguments)
        guard result.status == 0 else { throw TestFailure("flexosctl hosts failed: \(result.errors)") }
        return try JSONDecoder().decode([HostDescription].self, from: Data(result.output.utf8))
    }

    /// The test driver's host is an i686 with 16 CPUs and 3 GiB: it can run no image set.
    @Test func libvirtsTestHostIsReadAndRunsNothing() throws {
        let host = try #require(try Self.hosts(["--connect", "test:///default"]).first)
        #expect(host.source == .libvirt && host.architecture == "i686" && host.cpus == 16 && host.memoryBytes == 3 << 30)
        #expect(!host.localKVM)
        #expect(host.mechanisms.map(\.mechanism) == ["fcalls", "vmept", "intel-mpk"])
        #expect(host.mechanisms.allSatisfy { $0.engine == nil && $0.reason.contains("this host is i686") })
    }

    @Test func aHostThatDoesNotAnswerIsAnErrorNamingIt() throws {
        let result = try Executables.run("flexosctl", ["hosts", "--connect", "qemu+unix:///system?socket=/nonexistent/sock"])
        #expect(result.status == 1)
        #expect(result.errors.contains("cannot connect to qemu+unix:///system?socket=/nonexistent/sock"), "\(result.errors)")
    }

    /// With no libvirtd, this machine is still described, from flexosd's own probe, and
    /// the description says why.
    @Test func withNoLibvirtdTheKVMProbeAnswers() throws {
        let host = try HostSurvey.describe("qemu+unix:///system?socket=/nonexistent/sock", fallBackToKVMProbe: true)
        #expect(host.source == .kvmProbe && host.note?.contains("no libvirtd answered") == true)
        #expect(host.architecture == "x86_64" && host.localKVM)
        let vmept = try #require(host.mechanisms.first { $0.mechanism == "vmept" })
        #expect(vmept.engine == "flexosd (KVM)")
        let mpk = try #require(host.mechanisms.first { $0.mechanism == "intel-mpk" })
        #expect(mpk.engine == "flexosd's QEMU engine (TCG, PKU emulated)", "\(mpk)")
    }

    /// This machine's libvirtd (PVM KVM, whose CPU has no pku; QEMU with TCG): intel-mpk
    /// only emulated, vmept and fcalls on flexosd's KVM engine.
    @Test func thisMachinesLibvirtdNamesTheMissingPKUOnKVMAndTheEmulatedOne() throws {
        let daemon = try Libvirtd()
        defer { daemon.stop() }
        let host = try #require(try Self.hosts([]).first)
        #expect(host.source == .libvirt && host.note == nil && host.architecture == "x86_64" && host.localKVM)
        #expect(host.hypervisors.contains { $0.type == "kvm" && $0.protectionKeys == false })
        #expect(host.hypervisors.contains { $0.type == "qemu" && $0.protectionKeys == true })
        let mpk = try #require(host.mechanisms.first { $0.mechanism == "intel-mpk" })
        #expect(mpk.engine == "flexosd's QEMU engine (TCG, PKU emulated)" && mpk.reason.contains("KVM here offers no protection keys"))
        let text = try Executables.run("flexosctl", ["hosts"]).output
        #expect(text.contains("intel-mpk  yes, flexosd's QEMU engine (TCG, PKU emulated)"), "\(text)")
        let folder = NSTemporaryDirectory() + "hosts-build-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let build = try Executables.run("flexosctl", ["build", "--host", "qemu:///system", "Configs/example-vmept2.yaml", "--output", folder, "-q"])
        #expect(build.status == 0, "\(build.errors)")
    }

    /// A conformation the host cannot enforce is refused before anything is compiled,
    /// naming its compartments and the reason.
    @Test func buildRefusesWhatTheHostCannotEnforceBeforeCompiling() throws {
        let folder = NSTemporaryDirectory() + "hosts-refused-\(getpid())"
        let result = try Executables.run("flexosctl", ["build", "--host", "test:///default", "Configs/example-vmept2.yaml", "--output", folder])
        #expect(result.status == 1)
        #expect(result.errors.contains("test:///default cannot enforce vmept, which compartments comp1, comp2 of example-vmept2 need: image sets are x86-64; this host is i686"), "\(result.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder))
    }
}

/// This machine's libvirtd (and virtlogd): the one already running, or one started for the
/// test (as root, without systemd, in the foreground as the test's children) and stopped
/// afterwards by its PID.
final class Libvirtd {
    static let socket = "/run/libvirt/libvirt-sock"
    private var started: [Process] = []

    init() throws {
        if Self.answers() { return }
        for daemon in ["/usr/sbin/virtlogd", "/usr/sbin/libvirtd"] {
            guard FileManager.default.isExecutableFile(atPath: daemon) else {
                throw TestFailure("\(daemon) is missing: scripts/setup.sh installs libvirt-daemon-system")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: daemon)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            started.append(process)
        }
        let deadline = Date().addingTimeInterval(20)
        while !Self.answers() {
            guard started.allSatisfy(\.isRunning), Date() < deadline else {
                stop()
                throw TestFailure("libvirtd did not answer on \(Self.socket) within 20 s")
            }
            usleep(50_000)
        }
    }

    static func answers() -> Bool { (try? Executables.runProgram("/usr/bin/virsh", ["-c", "qemu:///system", "version"]).status) == 0 }

    /// SIGTERM, then SIGKILL after 5 s (a process spawned from a test's thread may have
    /// SIGTERM blocked).
    func stop() {
        for process in started.reversed() where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        started = []
    }
}
