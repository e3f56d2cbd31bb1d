import ControlProtocol
import Foundation
import GuestMachine
import Hosts
import Monitor
import Testing

/// intel-mpk on KVM, where KVM offers protection keys: this host's KVM (PVM) does not, so
/// these run on the nested KVM of scripts/nested-kvm (kvm-amd inside QEMU's TCG, which
/// emulates PKU). The keys are enforced by the emulation there, but the code path is the
/// one a host with PKU runs. Every check reads one command of a single boot.
@Suite(.tags(.qemu, .redis), .beyondTheUnitTier) struct NestedKVMTests {
    /// What each command printed, by name: one boot for the whole suite (about 20 s of TCG).
    private static let batch: Result<[String: NestedKVM.Result], any Error> = Result { try runBatch() }

    private static let socket = "/run/flexosd-nested.sock"

    /// The commands, by name: `flexosd launch --json` of image sets, and a daemon session.
    private static func commands() throws -> [(name: String, command: String)] {
        let flexosd = Executables.folder + "/flexosd"
        let flexosctl = Executables.folder + "/flexosctl"
        var commands: [(String, String)] = []
        for target in [
            "Configs/example-mpk2.yaml", "Configs/example-mpk3.yaml", "Configs/example-unshared-mpk2.yaml",
            "Configs/example-fcalls.yaml", "Configs/example-vmept2.yaml", "Configs/example-unshared-vmept2.yaml",
            "Tests/Guests/mpkhostile-mpk2.yaml", "Tests/Guests/mpkgatejump-mpk2.yaml",
            "Tests/Guests/mpkforge-mpk2.yaml",
            "Tests/Guests/mpkcanary-mpk2.yaml", "Tests/Guests/fault"
        ] {
            commands.append((target, "\(flexosd) launch --json --timeout 60s \(try TestImages.build(target).folder)"))
        }
        let ticker = try TestImages.build("Tests/Guests/ticker-mpk2.yaml").folder
        let control = flexosctl
        // The daemon launches an intel-mpk set through the API; inspect shows its keys.
        commands.append(
            (
                "daemon",
                "export FLEXOSD_SOCKET=\(socket); \(flexosd) serve 2>/tmp/flexosd.log & daemon=$!; "
                    + "for i in $(seq 100); do [ -S \(socket) ] && break; sleep 0.1; done; "
                    + "\(control) launch \(ticker) --name ticker --json >/dev/null && sleep 1 && "
                    + "\(control) inspect compartments ticker --json && \(control) inspect compartments ticker >&2 && "
                    + "\(control) stop ticker >/dev/null; kill $daemon; wait"
            ))
        // The appliance under intel-mpk, with redis-cli (the network device listens inside the nested guest).
        for target in ["Configs/kvstore-parser-mpk2.yaml", "Configs/kvstore-mpk3.yaml"] {
            let cli = "redis-cli -p 6390"
            commands.append(
                (
                    target,
                    "\(flexosd) launch --listen 127.0.0.1:6390 --timeout 120s \(try TestImages.build(target).folder) & appliance=$!; "
                        + "for i in $(seq 200); do \(cli) PING >/dev/null 2>&1 && break; sleep 0.1; done; "
                        + "\(cli) SET greeting hello; \(cli) GET greeting; \(cli) INCR visits; \(cli) INCR visits; \(cli) RPUSH list a b c; \(cli) LRANGE list 0 -1; "
                        + "kill $appliance; wait"
                ))
        }
        // Debian's libvirtd inside, as on a host with PKU: what `flexosctl hosts` reads there.
        commands.append(
            (
                "libvirt",
                "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm && mkdir -p /var/lib/libvirt/qemu /var/cache/libvirt "
                    + "/var/log/libvirt/qemu && ln -sfn /run /var/run && /usr/sbin/libvirtd -d && "
                    + "for i in $(seq 300); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.2; done; "
                    + "\(control) hosts --json && \(control) hosts >&2; kill $(cat /run/libvirtd.pid)"
            ))
        return commands
    }

    /// libvirtd, its QEMU driver and the QEMU it probes (whose TCG is a module), with the
    /// configuration and CPU map they read: what a libvirt host needs inside the nested guest.
    private static let libvirtExecutables = [
        "/usr/sbin/libvirtd", "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so",
        "/usr/bin/qemu-system-x86_64", "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"
    ]
    private static let libvirtFiles = ["/etc/passwd", "/etc/group", "/etc/libvirt", "/usr/share/libvirt/cpu_map"]

    private static func runBatch() throws -> [String: NestedKVM.Result] {
        let commands = try commands()
        let results = try NestedKVM.run(
            commands.map(\.command),
            executables: [Executables.folder + "/flexosd", Executables.folder + "/flexosctl", "/usr/bin/redis-cli"]
                + libvirtExecutables,
            files: [testBuildFolder] + libvirtFiles)
        return Dictionary(uniqueKeysWithValues: zip(commands.map(\.name), results))
    }

    /// The result of the command named `name`, and its report (`flexosd launch --json`).
    private func launched(_ name: String) throws -> (report: RunReport, console: String) {
        let result = try #require(try Self.batch.get()[name])
        guard let report = try? JSONDecoder().decode(RunReport.self, from: Data(result.output.utf8)) else {
            throw TestFailure("\(name) printed no report (status \(result.status)): \(result.output)\n\(result.errors)")
        }
        return (report, result.errors)
    }

    @Test(arguments: ["Configs/example-mpk2.yaml", "Configs/example-mpk3.yaml"])
    func theExampleRunsInIntelMPKOnKVM(_ conformation: String) throws {
        let (report, console) = try launched(conformation)
        #expect(report.outcome == "exited" && report.exitStatus == 0, "\(report.message ?? "")\n\(console)")
        #expect(console.contains("callback called!"))
        #expect(console.contains("lib_func set stack_int to 42 and cleared static_buf: yes"))
    }

    /// The talk's debugging story under intel-mpk: the same report as under the QEMU engine.
    @Test func theDebuggingStoryIsAProtectionKeyFaultOnKVM() throws {
        let fault = try #require(try launched("Configs/example-unshared-mpk2.yaml").report.fault)
        #expect(fault.kind == .protectionKeyFault)
        #expect(fault.compartment == "comp2")
        #expect(fault.summary.hasPrefix("write of 0x"), "\(fault.summary)")
        #expect(
            fault.summary.contains("(the private stack of compartment comp1, key 1 of compartment comp1)"),
            "\(fault.summary)")
        #expect(fault.location?.hasSuffix("Guest/Libraries/flexosexample/lib_func.swift:10") == true)
        #expect(fault.gate == "export flexosexample.lib_func, called from compartment comp1")
        #expect(fault.render().hasPrefix("protection-key fault in compartment comp2: write of 0x"))
    }

    @Test(arguments: ["Configs/example-fcalls.yaml", "Configs/example-vmept2.yaml"])
    func fcallsAndVmeptRunThereToo(_ conformation: String) throws {
        let (report, console) = try launched(conformation)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.contains("callback called!"))
    }

    /// On AMD's KVM a triple fault resets the vCPU, so reports come from the exception entry.
    @Test func faultReportsNameTheCodeOnAMDsKVM() throws {
        let fault = try #require(try launched("Configs/example-unshared-vmept2.yaml").report.fault)
        #expect(
            fault.compartment == "comp2"
                && fault.addressRegion?.contains("the private stack of compartment comp1") == true, "\(fault.render())")
        #expect(fault.location?.hasSuffix("Guest/Libraries/flexosexample/lib_func.swift:10") == true)
        let plain = try #require(try launched("Tests/Guests/fault").report.fault)
        #expect(plain.kind == .pageFault && plain.address == 0xDEAD_0000, "\(plain.render())")
    }

    /// The hostile intel-mpk guests of the QEMU engine's tests, on KVM.
    @Test func hostileIntelMPKGuestsAreStoppedOnKVM() throws {
        let hostile = try launched("Tests/Guests/mpkhostile-mpk2.yaml")
        #expect(hostile.report.exitStatus == 0, "\(hostile.report.message ?? "")\n\(hostile.console)")
        #expect(hostile.console.contains("mpkhostile: the gate gave back r12-r15 as they were"))
        #expect(hostile.console.contains("mpkhostile: a private array came from its own heap"))

        let jump = try #require(try launched("Tests/Guests/mpkgatejump-mpk2.yaml").report.fault)
        #expect(jump.kind == .gateCheck && jump.function == "flexos_mpk_gate_abort", "\(jump.render())")

        let forge = try #require(try launched("Tests/Guests/mpkforge-mpk2.yaml").report.fault)
        #expect(forge.kind == .protectionKeyFault && forge.compartment == "comp2", "\(forge.render())")
        #expect(forge.summary.contains("key 1 of compartment comp1"), "\(forge.summary)")

        let canary = try launched("Tests/Guests/mpkcanary-mpk2.yaml")
        #expect(canary.report.fault?.summary.contains("read-only") == true, "\(canary.report.message ?? "")")
        #expect(!canary.console.contains("the canary was overwritten"))
    }

    /// The key-value appliance under intel-mpk answers redis-cli on KVM.
    @Test(arguments: ["Configs/kvstore-parser-mpk2.yaml", "Configs/kvstore-mpk3.yaml"])
    func theApplianceAnswersRedisCLIInIntelMPK(_ conformation: String) throws {
        let result = try #require(try Self.batch.get()[conformation])
        // Standard output has the appliance's console first, then what redis-cli printed.
        #expect(result.output.hasSuffix("\nOK\nhello\n1\n2\n3\na\nb\nc\n"), "\(result.output)\n\(result.errors)")
        #expect(result.errors.contains("listening on 127.0.0.1:6390"), "\(result.errors)")
    }

    /// The daemon launches intel-mpk on KVM through its API, and inspect shows each key.
    @Test func theDaemonLaunchesIntelMPKAndInspectShowsTheKeys() throws {
        let result = try #require(try Self.batch.get()["daemon"])
        let snapshots = try JSONDecoder().decode([CompartmentSnapshot].self, from: Data(result.output.utf8))
        let machine = try #require(snapshots.first, "\(result.errors)")
        #expect(snapshots.count == 1 && machine.mechanism == "intel-mpk")
        // (intel-mpk gates switch keys without the gate block, so they are not counted there.)
        #expect(machine.vcpu != .stopped, "\(machine)")
        let keys = try #require(machine.protectionKeys)
        #expect(keys.map(\.compartment) == ["comp1", "comp2"] && keys.map(\.key) == [1, 2])
        #expect(keys.map(\.pkru) == ["0xfffffff0", "0xffffffcc"])
        #expect(result.errors.contains("comp2: key 2, PKRU 0xffffffcc (only keys 0 and 2 open)"), "\(result.errors)")
    }

    /// Where the nested KVM offers protection keys, a libvirtd there reports KVM with PKU,
    /// and `flexosctl hosts` gives intel-mpk to flexosd's KVM engine.
    @Test func aLibvirtdOnTheNestedKVMReportsKVMWithPKU() throws {
        let result = try #require(try Self.batch.get()["libvirt"])
        let hosts = try? JSONDecoder().decode([HostDescription].self, from: Data(result.output.utf8))
        let host = try #require(hosts?.first, "status \(result.status): \(result.output)\n\(result.errors)")
        #expect(host.source == .libvirt && host.uri == "qemu:///system", "\(result.errors)")
        #expect(host.deciding.contains("pku"), "\(host)")
        #expect(host.hypervisors.contains { $0.type == "kvm" && $0.protectionKeys == true }, "\(result.errors)")
        let mpk = host.mechanisms.first { $0.mechanism == "intel-mpk" }
        #expect(mpk?.engine == "flexosd (KVM with PKU)", "\(result.errors)")
        #expect(result.errors.contains("hypervisors: qemu (with PKU), kvm (with PKU)"), "\(result.errors)")
    }
}
