import Foundation
import Hosts
import Testing

/// `flexosctl hosts`: libvirt's fake host (test:///default, no daemon), a real libvirtd on
/// this machine, and the /dev/kvm probe when no libvirtd answers.
@Suite(.serialized, .tags(.qemu), .beyondTheUnitTier) struct HostsTests {
    static func hosts(_ arguments: [String]) throws -> [HostDescription] {
        let result = try Executables.run("flexosctl", ["hosts", "--json"] + arguments)
        guard result.status == 0 else { throw TestFailure("flexosctl hosts failed: \(result.errors)") }
        return try JSONDecoder().decode([HostDescription].self, from: Data(result.output.utf8))
    }

    /// The test driver's host is an i686 with 16 CPUs and 3 GiB: it can run no image set.
    @Test func libvirtsTestHostIsReadAndRunsNothing() throws {
        let host = try #require(try Self.hosts(["--connect", "test:///default"]).first)
        #expect(
            host.source == .libvirt && host.architecture == "i686" && host.cpus == 16 && host.memoryBytes == 3 << 30)
        #expect(!host.localKVM)
        #expect(host.mechanisms.map(\.mechanism) == ["fcalls", "vmept", "intel-mpk"])
        #expect(host.mechanisms.allSatisfy { $0.engine == nil && $0.reason.contains("this host is i686") })
    }

    @Test func aHostThatDoesNotAnswerIsAnErrorNamingIt() throws {
        let result = try Executables.run(
            "flexosctl", ["hosts", "--connect", "qemu+unix:///system?socket=/nonexistent/sock"])
        #expect(result.status == 1)
        #expect(
            result.errors.contains("cannot connect to qemu+unix:///system?socket=/nonexistent/sock"), "\(result.errors)"
        )
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
        #expect(
            mpk.engine == "flexosd's QEMU engine (TCG, PKU emulated)"
                && mpk.reason.contains("KVM here offers no protection keys"))
        let text = try Executables.run("flexosctl", ["hosts"]).output
        #expect(text.contains("intel-mpk  yes, flexosd's QEMU engine (TCG, PKU emulated)"), "\(text)")
        let folder = NSTemporaryDirectory() + "hosts-build-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let build = try Executables.run(
            "flexosctl", ["build", "--host", "qemu:///system", "Configs/example-vmept2.yaml", "--output", folder, "-q"])
        #expect(build.status == 0, "\(build.errors)")
        try Self.anExportedDomainBootsOnThisLibvirtd()
    }

    /// `flexosctl launch --connect qemu:///system`: the daemon starts a transient domain on
    /// the real libvirtd; the set is listed with its host, logged, inspected with its keys,
    /// stopped (the domain goes), and a faulting set comes back with the QEMU engine's report.
    @Test func aSetLaunchedOnLibvirtThroughTheDaemonIsListedLoggedAndStopped() throws {
        let libvirtd = try Libvirtd()
        defer { libvirtd.stop() }
        let daemon = try DaemonProcess()
        let example = try TestImages.build("Configs/example-mpk2.yaml").folder
        let launched = try daemon.flexosctl(["launch", example, "--connect", "qemu:///system", "--name", "talk"])
        #expect(launched.status == 0, "\(launched.errors)")
        let ended = try daemon.waitForEnd("talk", seconds: 120)
        #expect(ended.state == "exited" && ended.exitStatus == 0, "\(ended.message ?? "")")
        #expect(ended.engine == "libvirt" && ended.host == "qemu:///system")
        #expect(try daemon.flexosctl(["logs", "talk"]).output.contains("callback called!\n"))
        let listed = try daemon.flexosctl(["list"]).output
        #expect(listed.contains("libvirt qemu:///system"), "\(listed)")

        let ticker = try TestImages.build("Tests/Guests/ticker-mpk2.yaml").folder
        #expect(try daemon.flexosctl(["launch", ticker, "--connect", "qemu:///system", "--name", "ticks"]).status == 0)
        let deadline = Date().addingTimeInterval(60)
        while !(try daemon.flexosctl(["logs", "ticks"]).output.contains("tick 50")) && Date() < deadline {
            usleep(100_000)
        }
        let domains = {
            try Executables.runProgram("/usr/bin/virsh", ["-c", "qemu:///system", "list", "--name"]).output
        }
        #expect(try domains().contains("flexos-ticker-mpk2-"))
        let machine = try #require(try daemon.inspect("ticks").first)
        #expect(machine.vcpu == .running && machine.protectionKeys?.map(\.pkru) == ["0xfffffff0", "0xffffffcc"])
        // flexosd serves the domain's hypercalls on its RAM, as under the QEMU engine: live counts and PKRU.
        #expect((machine.hypercalls["wait"] ?? 0) > 0, "\(machine.hypercalls)")
        #expect(machine.rightsAtLastHypercall == .init(pkru: "0xfffffff0", compartment: "comp1"))
        #expect(try daemon.flexosctl(["stop", "ticks"]).output == "ticks: stopped\n")
        #expect(try !domains().contains("flexos-ticker-mpk2-"))
        #expect(try daemon.flexosctl(["remove", "ticks"]).status == 0)

        let forge = try TestImages.build("Tests/Guests/mpkforge-mpk2.yaml").folder
        #expect(try daemon.flexosctl(["launch", forge, "--connect", "qemu:///system", "--name", "forge"]).status == 0)
        let faulted = try daemon.waitForEnd("forge", seconds: 120)
        #expect(faulted.state == "faulted" && faulted.exitStatus == 139)
        #expect(faulted.message?.contains("key 1 of compartment comp1") == true, "\(faulted.message ?? "")")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter {
            $0.hasPrefix("flexos-libvirt-\(daemon.process.processIdentifier)-")
        }
        #expect(leftovers.isEmpty, "\(leftovers)")

        for (arguments, error) in [
            (["--connect", "qemu+ssh://elsewhere/system"], "is not a libvirt URI of a host on this machine"),
            (["--connect", "qemu:///system", "--engine", "kvm"], "--connect names a libvirt host"),
            (["--engine", "libvirt"], "needs the host to run on: --connect URI")
        ] {
            let refused = try daemon.flexosctl(["launch", example] + arguments)
            #expect(refused.status == 1 && refused.errors.contains(error), "\(arguments): \(refused.errors)")
        }
        let vmept = try TestImages.build("Configs/example-vmept2.yaml").folder
        let refused = try daemon.flexosctl(["launch", vmept, "--connect", "qemu:///system"])
        #expect(refused.status == 1 && refused.errors.contains("the QEMU engine runs single-VM image sets"))
    }

    /// A daemon killed while its set runs on libvirt leaves the transient domain and its
    /// files behind; the next launch on that host destroys and removes them.
    @Test func aKilledDaemonsDomainIsDestroyedByTheNextLaunch() throws {
        let libvirtd = try Libvirtd()
        defer { libvirtd.stop() }
        let ticker = try TestImages.build("Tests/Guests/ticker-mpk2.yaml").folder
        let domains = {
            try Executables.runProgram("/usr/bin/virsh", ["-c", "qemu:///system", "list", "--name"]).output
        }
        let killed = try DaemonProcess()
        #expect(try killed.flexosctl(["launch", ticker, "--connect", "qemu:///system", "--name", "left"]).status == 0)
        let pid = killed.process.processIdentifier
        #expect(try domains().contains(".\(pid)-"))
        killed.stopAndReadLog(signal: SIGKILL)
        #expect(try domains().contains(".\(pid)-"), "a killed daemon cannot stop its domain")

        let next = try DaemonProcess()
        let example = try TestImages.build("Configs/example-mpk2.yaml").folder
        #expect(try next.flexosctl(["launch", example, "--connect", "qemu:///system", "--name", "next"]).status == 0)
        #expect(try !domains().contains(".\(pid)-"))
        let folders = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
        #expect(!folders.contains { $0.hasPrefix("flexos-libvirt-\(pid)-") }, "\(folders)")
        #expect(try next.waitForEnd("next", seconds: 120).exitStatus == 0)
    }

    /// The talk's intel-mpk example, exported and booted as a transient TCG domain of the
    /// real libvirtd: its console shows the callback, its report the exit.
    static func anExportedDomainBootsOnThisLibvirtd() throws {
        let folder = try export("Configs/example-mpk2.yaml")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let create = try Executables.runProgram(
            "/usr/bin/virsh", ["-c", "qemu:///system", "create", folder + "/domain.xml"])
        #expect(create.status == 0, "\(create.errors)")
        let deadline = Date().addingTimeInterval(120)
        var report = ""
        while !report.contains("exit") && Date() < deadline {
            usleep(200_000)
            report = (try? String(contentsOfFile: folder + "/control", encoding: .utf8)) ?? ""
        }
        let console = try String(contentsOfFile: folder + "/console.log", encoding: .utf8)
        #expect(console.contains("callback called!"), "\(console)")
        #expect(report.hasPrefix("exit 0x0000000000000000"), "\(report)")
    }

    /// Exports the image set `configuration` builds; the folder written.
    static func export(_ configuration: String) throws -> String {
        let set = try TestImages.build(configuration).folder
        let folder = NSTemporaryDirectory() + "flexos-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let result = try Executables.run("flexosctl", ["export", "--libvirt", set, "--output", folder])
        guard result.status == 0 else { throw TestFailure("flexosctl export failed: \(result.errors)") }
        return folder
    }

    /// An exported domain runs with no flexosd beside it: its shim serves the hypercalls
    /// itself (the one place it still does), and `virsh create` runs it to its end, with the
    /// console and the report in the folder's files.
    @Test func anExportedDomainRunsWithVirshAlone() throws {
        let libvirtd = try Libvirtd()
        defer { libvirtd.stop() }
        let folder = try Self.export("Configs/example-mpk2.yaml")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let virsh = { (command: [String]) in
            try Executables.runProgram("/usr/bin/virsh", ["-c", "qemu:///system"] + command)
        }
        let created = try virsh(["create", folder + "/domain.xml"])
        defer { _ = try? virsh(["destroy", "flexos-example-mpk2"]) }
        #expect(created.status == 0, "\(created.errors)")
        let deadline = Date().addingTimeInterval(60)
        var control = ""
        while !control.hasSuffix("\n") && Date() < deadline {
            usleep(100_000)
            control = (try? String(contentsOfFile: folder + "/control", encoding: .utf8)) ?? ""
        }
        #expect(control == "exit 0x0000000000000000 \n", "\(control)")
        let console = (try? String(contentsOfFile: folder + "/console.log", encoding: .utf8)) ?? ""
        #expect(console.contains("callback called!"), "\(console)")
    }

    /// libvirt's own parser (the test driver, no daemon) takes the domain (it keeps no
    /// `<qemu:commandline>`: the real libvirtd's boot tests that part); a
    /// vmept set, which needs a VM per compartment, is refused with the reason.
    @Test func anExportedDomainIsWhatLibvirtAccepts() throws {
        let folder = try Self.export("Configs/example-mpk2.yaml")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let define = try Executables.runProgram(
            "/usr/bin/virsh", ["-c", "test:///default", "define \(folder)/domain.xml; dumpxml flexos-example-mpk2"])
        #expect(define.status == 0, "\(define.errors)")
        #expect(
            define.output.contains("<kernel>\(folder)/qemu-shim.elf</kernel>")
                && define.output.contains("mode='maximum'"), "\(define.output)")
        let vmept = try Executables.run(
            "flexosctl",
            [
                "export", "--libvirt", try TestImages.build("Configs/example-vmept2.yaml").folder, "--output",
                folder + "/vmept"
            ])
        #expect(vmept.status == 1 && vmept.errors.contains("vmept needs a VM per compartment"), "\(vmept.errors)")
    }

    /// A conformation the host cannot enforce is refused before anything is compiled,
    /// naming its compartments and the reason.
    @Test func buildRefusesWhatTheHostCannotEnforceBeforeCompiling() throws {
        let folder = NSTemporaryDirectory() + "hosts-refused-\(getpid())"
        let result = try Executables.run(
            "flexosctl", ["build", "--host", "test:///default", "Configs/example-vmept2.yaml", "--output", folder])
        #expect(result.status == 1)
        #expect(
            result.errors.contains(
                "test:///default cannot enforce vmept, which compartments comp1, comp2 of example-vmept2 need: image sets are x86-64; this host is i686"
            ), "\(result.errors)")
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
            // Only libvirtd must stay up: a virtlogd left running by an earlier run (a killed
            // test process's child) makes the new one exit at once, and libvirtd uses the old.
            guard started.last?.isRunning == true, Date() < deadline else {
                stop()
                throw TestFailure("libvirtd did not answer on \(Self.socket) within 20 s")
            }
            usleep(50_000)
        }
    }

    static func answers() -> Bool {
        (try? Executables.runProgram("/usr/bin/virsh", ["-c", "qemu:///system", "version"]).status) == 0
    }

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
