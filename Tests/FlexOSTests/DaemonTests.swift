import ControlAPI
import ControlClient
import ControlProtocol
import Foundation
import GuestMachine
import Monitor
import NIOHTTP1
import Testing

/// A real flexosd serving on a temporary socket, for one test.
final class DaemonProcess {
    let socket: String
    let process = Process()
    private let errors = Pipe()

    init(arguments: [String] = [], socket path: String? = nil) throws {
        socket = path ?? NSTemporaryDirectory() + "flexosd-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        process.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosd")
        // The test process's client runs on Swift's cooperative pool, which the tests'
        // own blocking waits can hold for many seconds when the suite runs in parallel on
        // two cores: a long idle timeout keeps such a stalled client from being cut off
        // half-way (the idle timeout has a test of its own that sets it short).
        let idle = arguments.contains("--idle-timeout") ? [] : ["--idle-timeout", "10m"]
        process.arguments = ["--socket", socket] + idle + arguments
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !ControlClient.isListening(socket) {
            guard process.isRunning, Date() < deadline else {
                throw TestFailure("flexosd did not start serving on \(socket): \(stopAndReadLog())")
            }
            usleep(10_000)
        }
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    var client: ControlClient { ControlClient(socketPath: socket) }

    /// Runs flexosctl against this daemon.
    func flexosctl(_ arguments: [String]) throws -> Executables.Result {
        try Executables.run("flexosctl", arguments + ["--socket", socket])
    }

    /// Sends `signal`, waits for the exit, and returns the daemon's log.
    @discardableResult
    func stopAndReadLog(signal: Int32 = SIGTERM) -> String {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// The daemon's open VM objects (KVM VMs, vCPUs, guest memory, network devices' rings) and threads.
    func resources() -> (descriptors: [String], threads: Int) {
        let folder = "/proc/\(process.processIdentifier)/fd"
        let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap {
            entry -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + entry) else {
                return nil
            }
            return target.contains("kvm") || target.contains("memfd:flexos") || target.contains("io_uring")
                ? target : nil
        }
        let threads =
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task").count) ?? 0
        return (descriptors.filter { !$0.hasSuffix("/dev/kvm") }, threads)
    }
}

extension DaemonProcess {
    func launch(_ folder: String, name: String? = nil) throws -> ImageSetStatus {
        let result = try flexosctl(["launch", folder, "--json"] + (name.map { ["--name", $0] } ?? []))
        guard result.status == 0 else { throw TestFailure("launch failed: \(result.errors)") }
        return try JSONDecoder().decode(ImageSetStatus.self, from: Data(result.output.utf8))
    }

    func status(_ name: String) throws -> ImageSetStatus {
        let sets = try JSONDecoder().decode(
            [ImageSetStatus].self, from: Data(try flexosctl(["list", "--json"]).output.utf8))
        guard let set = sets.first(where: { $0.name == name }) else { throw TestFailure("\(name) is not listed") }
        return set
    }

    func inspect(_ name: String) throws -> [CompartmentSnapshot] {
        let result = try flexosctl(["inspect", "compartments", name, "--json"])
        guard result.status == 0 else { throw TestFailure("inspect failed: \(result.errors)") }
        return try JSONDecoder().decode([CompartmentSnapshot].self, from: Data(result.output.utf8))
    }

    /// Waits until `name` is no longer running, or fails after `seconds`.
    func waitForEnd(_ name: String, seconds: Double = 20) throws -> ImageSetStatus {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let set = try status(name)
            if set.state != "running" { return set }
            usleep(20_000)
        }
        throw TestFailure("\(name) still runs after \(seconds) s")
    }
}

/// End-to-end: the real daemon process, driven by the real flexosctl.
@Suite(.serialized, .tags(.daemon, .qemu), .beyondTheUnitTier) struct DaemonTests {
    @Test func launchInspectLogsAndStop() throws {
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let example = try TestImages.build("Configs/example-vmept2.yaml").folder
        let daemon = try DaemonProcess()
        let baseline = daemon.resources()

        let running = try daemon.launch(ticker)
        #expect(running.name == "ticker-vmept2")
        #expect(running.state == "running")
        let finished = try daemon.launch(example)
        #expect(try daemon.waitForEnd(finished.name).exitStatus == 0)
        usleep(300_000)

        let compartments = try daemon.inspect(running.name)
        #expect(compartments.map(\.name) == ["comp1", "comp2"])
        #expect(compartments.map(\.libraries) == [["ticker"], ["tickerlib"]])
        #expect(compartments.allSatisfy { $0.mechanism == "vmept" && $0.vcpu != .stopped })
        #expect(compartments[0].gates.callsOut > 10)
        #expect(compartments[1].gates.callsIn > 10)
        #expect(compartments[0].gates.meanNanoseconds != nil)
        for compartment in compartments {
            #expect(compartment.regions.contains { !$0.shared && $0.kind == "stack" })
            #expect(compartment.regions.contains { $0.shared && $0.kind == "gate block" })
            #expect(compartment.privateBytes > 0 && compartment.sharedBytes > 0)
            #expect((compartment.kvmStatistics["exits"] ?? 0) > 0)
        }
        // The library's code is only in the library's compartment.
        #expect(
            compartments[0].regions.contains { $0.library == "ticker" }
                && !compartments[0].regions.contains { $0.library == "tickerlib" })
        #expect(
            compartments[1].regions.contains { $0.library == "tickerlib" }
                && !compartments[1].regions.contains { $0.library == "ticker" })

        let logs = try daemon.flexosctl(["logs", running.name])
        #expect(logs.output.contains("[comp1] ticker started"))
        #expect(
            try daemon.flexosctl(["logs", finished.name, "--compartment", "comp1"]).output.contains(
                "[comp1] callback called!"))

        let human = try daemon.flexosctl(["inspect", "compartments", running.name])
        #expect(human.output.contains("comp2  [vmept]"))
        #expect(human.output.contains("gate calls:"))

        let stopped = try daemon.flexosctl(["stop", running.name, "--json"])
        #expect(try JSONDecoder().decode(ImageSetStatus.self, from: Data(stopped.output.utf8)).state == "stopped")
        #expect(try daemon.inspect(running.name).allSatisfy { $0.vcpu == .stopped })
        // Nothing of either image set outlives it: VMs, vCPUs, memfds, threads.
        let after = daemon.resources()
        #expect(after.descriptors == baseline.descriptors)
        #expect(after.threads <= baseline.threads + 2)
        #expect(daemon.stopAndReadLog().contains("image set ended"))
    }

    @Test func aKeyValueApplianceServesRedisThroughTheDaemonUntilStopped() async throws {
        let kvstore = try TestImages.build("Configs/kvstore-parser-vmept2.yaml").folder
        let daemon = try DaemonProcess()
        let baseline = daemon.resources()
        let launched = try daemon.flexosctl(["launch", kvstore, "--listen", "127.0.0.1:0", "--json"])
        let status = try JSONDecoder().decode(ImageSetStatus.self, from: Data(launched.output.utf8))
        let address = try #require(status.listening?.first, "\(launched.output)")
        let port = try #require(address.split(separator: ":").last.map(String.init))
        #expect(
            String(decoding: try Redis.run("redis-cli", ["-p", port, "SET", "through", "daemon"]), as: UTF8.self)
                == "OK\n")
        #expect(
            String(decoding: try Redis.run("redis-cli", ["-p", port, "GET", "through"]), as: UTF8.self) == "daemon\n")
        #expect(try daemon.flexosctl(["list"]).output.contains(address))

        let compartments = try daemon.inspect(status.name)
        let network = try #require(compartments.first { $0.devices != nil })
        #expect(network.name == "comp2" && network.libraries.contains("net"))
        #expect(network.devices?.first?.kind == "net" && network.devices?.first?.counters["accepted"] == 2)
        #expect(network.regions.contains { $0.kind == "device" && $0.section == "network device" })
        #expect(!compartments[0].regions.contains { $0.kind == "device" })
        #expect(
            try daemon.flexosctl(["inspect", "compartments", status.name]).output.contains(
                "network device: listening on \(address)"))
        // Device counters reach /metrics through the device interface, labelled with the device.
        let metrics = String(decoding: try await daemon.client.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(
            metrics.contains(
                "flexosd_device_counter{image_set=\"\(status.name)\",compartment=\"comp2\",engine=\"kvm\",device=\"net\",counter=\"accepted\"} 2"
            ), "\(metrics)")

        #expect(daemon.resources().descriptors.contains { $0.contains("io_uring") })
        #expect(try daemon.flexosctl(["stop", status.name]).status == 0)
        #expect(throws: TestFailure.self) { try RawConnection(port: UInt16(port)!) }
        // The device's memory, its io_uring and its threads go with the image set.
        let after = daemon.resources()
        #expect(after.descriptors == baseline.descriptors)
        #expect(after.threads <= baseline.threads + 2)
        let refused = try daemon.flexosctl(["launch", kvstore, "--listen", "nowhere:1"])
        #expect(refused.status != 0 && refused.errors.contains("is not an address to listen on"), "\(refused.errors)")
    }

    /// intel-mpk through the daemon: this host's KVM has no protection keys, so a launch
    /// that names no engine runs on QEMU and says why; listed, inspected with each
    /// compartment's key and PKRU while it runs, logged, stopped (QEMU goes) and removed.
    @Test func anIntelMPKImageSetRunsThroughTheDaemonOnQEMU() throws {
        let ticker = try TestImages.build("Tests/Guests/ticker-mpk2.yaml").folder
        let daemon = try DaemonProcess()
        let launched = try daemon.flexosctl(["launch", ticker, "--name", "keyed"])
        #expect(launched.status == 0 && launched.output == "keyed\n", "\(launched.errors)")
        let status = try daemon.status("keyed")
        if (try? requireKVM().offersProtectionKeys) == true {
            #expect(status.engine == "kvm")
        } else {
            #expect(status.engine == "qemu")
            #expect(
                status.engineReason?.contains("kvm cannot (this host's KVM offers no protection keys") == true,
                "\(status.engineReason ?? "")")
            #expect(launched.errors.contains("keyed runs on qemu"), "\(launched.errors)")
        }
        let explicit = try daemon.flexosctl(["launch", ticker, "--engine", "qemu", "--json"])
        let onQEMU = try JSONDecoder().decode(ImageSetStatus.self, from: Data(explicit.output.utf8))
        #expect(onQEMU.engine == "qemu" && onQEMU.engineReason == nil)
        #expect(
            try daemon.flexosctl(["list"]).output.split(separator: "\n").contains {
                $0.contains(onQEMU.name) && $0.contains(" qemu ")
            })

        let deadline = Date().addingTimeInterval(60)
        while !(try daemon.flexosctl(["logs", onQEMU.name]).output.contains("tick 50")) && Date() < deadline {
            usleep(100_000)
        }
        #expect(try daemon.flexosctl(["logs", onQEMU.name]).output.hasPrefix("ticker started\ntick 50\n"))
        let compartments = try daemon.inspect(onQEMU.name)
        #expect(compartments.count == 1)
        let machine = try #require(compartments.first)
        #expect(machine.mechanism == "intel-mpk" && machine.vcpu == .running && machine.consoleBytes > 0)
        #expect(machine.protectionKeys?.map(\.compartment) == ["comp1", "comp2"])
        #expect(machine.protectionKeys?.map(\.key) == [1, 2])
        #expect(machine.protectionKeys?.map(\.pkru) == ["0xfffffff0", "0xffffffcc"])
        // Live: flexosd serves the shim's hypercalls, so it counts them and sees ring 3's PKRU
        // at each (the ticker's sleeps and prints are comp1's; tickerlib only counts).
        #expect((machine.hypercalls["wait"] ?? 0) > 0 && (machine.hypercalls["console_flush"] ?? 0) > 0)
        #expect(machine.rightsAtLastHypercall == .init(pkru: "0xfffffff0", compartment: "comp1"))
        let later = try daemon.inspect(onQEMU.name)[0]
        #expect(later.hypercalls["wait"] ?? 0 > machine.hypercalls["wait"] ?? 0, "the counters are not live")
        let text = try daemon.flexosctl(["inspect", "compartments", onQEMU.name]).output
        #expect(
            text.contains("intel-mpk on qemu, running") && text.contains("comp2: key 2, PKRU 0xffffffcc")
                && text.contains("PKRU at the last hypercall: 0xfffffff0 (comp1's rights)"), "\(text)")

        let qemuBefore = qemuProcesses(of: daemon.process.processIdentifier)
        #expect(qemuBefore.count == 2)
        #expect(try daemon.flexosctl(["stop", onQEMU.name]).output == "\(onQEMU.name): stopped\n")
        #expect(try daemon.inspect(onQEMU.name).first?.vcpu == .stopped)
        #expect(qemuProcesses(of: daemon.process.processIdentifier).count == qemuBefore.count - 1)
        #expect(try daemon.flexosctl(["remove", onQEMU.name]).status == 0)
        #expect(try daemon.flexosctl(["stop", "keyed"]).status == 0)
        #expect(qemuProcesses(of: daemon.process.processIdentifier).isEmpty)
        let vmept = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let refused = try daemon.flexosctl(["launch", vmept, "--engine", "qemu"])
        #expect(
            refused.status == 1 && refused.errors.contains("the QEMU engine runs single-VM image sets"),
            "\(refused.errors)")
    }

    @Test func aCrashingImageSetBesideAHealthyOne() throws {
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let crashing = try TestImages.build("Configs/example-unshared-vmept2.yaml").folder
        let daemon = try DaemonProcess()
        let healthy = try daemon.launch(ticker)
        let crashed = try daemon.launch(crashing, name: "crashy")
        let end = try daemon.waitForEnd("crashy")
        #expect(end.state == "faulted")
        #expect(end.exitStatus == 139)
        #expect(end.message?.contains("via gate: argument 3 (stackInt) of gate flexosexample.lib_func") == true)
        let log = try daemon.flexosctl(["logs", crashed.name]).output
        #expect(log.contains("[flexosd] guest fault in compartment comp2"))
        #expect(try daemon.inspect("crashy").count == 2)

        let ticksBefore = try daemon.inspect(healthy.name)[0].gates.callsOut
        usleep(200_000)
        #expect(try daemon.status(healthy.name).state == "running")
        #expect(try daemon.inspect(healthy.name)[0].gates.callsOut > ticksBefore)
        #expect(try daemon.flexosctl(["stop", healthy.name]).status == 0)
    }

    @Test func sigtermStopsEveryImageSetAndRemovesTheSocket() throws {
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let daemon = try DaemonProcess()
        _ = try daemon.launch(ticker)
        _ = try daemon.launch(ticker)
        #expect(try daemon.status("ticker-vmept2-2").state == "running")
        let started = Date()
        let log = daemon.stopAndReadLog(signal: SIGTERM)
        #expect(daemon.process.terminationStatus == 0)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
        #expect(log.contains("shutting down: stopping image sets"))
        #expect(log.contains("name=ticker-vmept2-2 outcome=stopped"))
    }

    @Test func sigintStopsTheDaemonToo() throws {
        let daemon = try DaemonProcess()
        _ = try daemon.launch(try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder)
        daemon.stopAndReadLog(signal: SIGINT)
        #expect(daemon.process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
    }

    @Test func logsFollowUntilTheImageSetEnds() throws {
        let daemon = try DaemonProcess()
        let set = try daemon.launch(try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder)
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosctl")
        follower.arguments = ["logs", set.name, "--follow", "--socket", daemon.socket]
        let output = Pipe()
        follower.standardOutput = output
        try follower.run()
        usleep(400_000)
        #expect(follower.isRunning)
        _ = try daemon.flexosctl(["stop", set.name])
        let deadline = Date().addingTimeInterval(10)
        while follower.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!follower.isRunning, "logs --follow did not end with the image set")
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("[comp1] ticker started"))
        #expect(text.contains("[comp1] tick 50"))
    }

    @Test func theSocketIsForItsOwnerOnlyAndNotShared() throws {
        let daemon = try DaemonProcess()
        var status = stat()
        #expect(lstat(daemon.socket, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        let second = Process()
        second.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosd")
        second.arguments = ["--socket", daemon.socket]
        let errors = Pipe()
        second.standardError = errors
        try second.run()
        second.waitUntilExit()
        #expect(second.terminationStatus == 1)
        #expect(
            String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains(
                "another flexosd is already serving on \(daemon.socket)"))
    }

    /// A daemon killed with SIGKILL leaves its socket file; the next one once refused to
    /// start over it. It also asks the kernel to pick another OOM victim than itself.
    @Test func aKilledDaemonsSocketIsTakenOverAndTheOOMKillerLooksElsewhere() throws {
        let first = try DaemonProcess()
        first.stopAndReadLog(signal: SIGKILL)
        #expect(
            FileManager.default.fileExists(atPath: first.socket), "SIGKILL removed the socket: nothing stale to test")
        let second = try DaemonProcess(socket: first.socket)
        #expect(try second.flexosctl(["list"]).status == 0)
        let score = try String(
            contentsOfFile: "/proc/\(second.process.processIdentifier)/oom_score_adj", encoding: .utf8)
        let status = try String(contentsOfFile: "/proc/\(second.process.processIdentifier)/status", encoding: .utf8)
        let capabilities =
            status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }.flatMap {
                UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16)
            } ?? 0
        let log = second.stopAndReadLog()
        if capabilities & (1 << 24) != 0 {  // CAP_SYS_RESOURCE: this machine's containers may lack it
            #expect(score.trimmingCharacters(in: .whitespacesAndNewlines) == "-500")
        } else {
            #expect(log.contains("could not lower its OOM score") && log.contains("CAP_SYS_RESOURCE"), "\(log)")
        }
    }

    @Test func badRequestsGetClearErrorsAndTheRightStatus() async throws {
        let example = try TestImages.build("Configs/example-vmept2.yaml").folder
        let daemon = try DaemonProcess()
        let client = daemon.client
        func refusal(_ method: NIOHTTP1.HTTPMethod, _ path: String, _ body: String? = nil) async -> (Int, String) {
            do {
                let reply = try await client.send(method, path, body: body.map { Array($0.utf8) })
                return (reply.status, "no error")
            } catch {
                if case .refused(let status, let message) = error { return (status, message) }
                return (0, "\(error)")
            }
        }
        var (status, message) = await refusal(.GET, "/image-sets/nosuchset")
        #expect(status == 404 && message.contains("there is no image set named nosuchset"))
        (status, message) = await refusal(.POST, "/image-sets", "{not json")
        #expect(status == 400 && message.contains("malformed launch request"))
        (status, message) = await refusal(.POST, "/image-sets", "{\"name\": \"x\"}")
        #expect(status == 400 && message.contains("malformed launch request"))
        (status, message) = await refusal(.POST, "/image-sets", "{\"path\": \"/nonexistent/set\"}")
        #expect(status == 400 && message.contains("/nonexistent/set does not exist"))
        (status, message) = await refusal(.POST, "/image-sets", "{\"path\": \"/etc/hostname\"}")
        #expect(status == 422 && message.contains("is not an ELF file"))
        (status, message) = await refusal(.POST, "/image-sets", "{\"path\": \"\(example)\", \"name\": \"../x\"}")
        #expect(status == 400 && message.contains("cannot name an image set"))
        _ = try daemon.launch(try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder, name: "busy")
        (status, message) = await refusal(.POST, "/image-sets", "{\"path\": \"\(example)\", \"name\": \"busy\"}")
        #expect(status == 409 && message.contains("already exists"))
        (status, message) = await refusal(.DELETE, "/image-sets/busy")
        #expect(status == 409 && message.contains("still running"))
        _ = try daemon.flexosctl(["stop", "busy"])
        #expect(try daemon.flexosctl(["remove", "busy"]).status == 0)
        (status, _) = await refusal(.GET, "/image-sets/busy")
        #expect(status == 404)

        let metrics = try await client.send(.GET, "/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains("flexosd_image_sets_launched_total{engine=\"kvm\"} 1"), "\(text)")
        #expect(text.contains("flexosd_image_sets_ended_total{outcome=\"stopped\",engine=\"kvm\"} 1"), "\(text)")
    }

    @Test func launchingWithoutKVMIsExplained() async throws {
        let daemon = try DaemonProcess(arguments: ["--kvm", "/nonexistent/kvm"])
        let example = try TestImages.build("Configs/example-vmept2.yaml").folder
        let result = try daemon.flexosctl(["launch", example])
        #expect(result.status == 1)
        #expect(
            result.errors.contains(
                "no engine can run this vmept image set here: kvm cannot (/nonexistent/kvm does not exist: this host offers no KVM"
            ), "\(result.errors)")
        do {
            _ = try await daemon.client.send(.POST, "/image-sets", body: Array("{\"path\": \"\(example)\"}".utf8))
            Issue.record("the launch was accepted")
        } catch {
            if case .refused(let status, _) = error { #expect(status == 503) } else { Issue.record("\(error)") }
        }
    }
}

/// The qemu-system-x86_64 processes whose parent is `parent`.
func qemuProcesses(of parent: Int32) -> [Int32] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
        guard let pid = Int32(entry), let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8)
        else { return nil }
        let fields = status.split(separator: "\n")
        guard fields.first?.contains("qemu-system") == true, fields.contains("PPid:\t\(parent)") else { return nil }
        return pid
    }
}
