import ControlAPI
import Foundation
import GuestMachine
import Monitor
import Testing
import Yams

/// One HTTP exchange over the daemon's Unix socket, written by hand so a test can send
/// what flexosctl never would (odd methods and headers, oversized bodies, nothing at all).
struct RawHTTP {
    let socket: String

    /// A connected socket descriptor.
    func connect() throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socket.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw TestFailure("cannot connect to \(socket)")
        }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `method path` with `headers` and `body`; returns the status and the body.
    func exchange(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (
        status: Int, body: String
    ) {
        let fd = try connect()
        defer { close(fd) }
        var head =
            "\(method) \(path) HTTP/1.1\r\nHost: flexosd\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let reply = String(decoding: readAll(fd), as: UTF8.self)
        guard let statusText = reply.split(separator: " ", maxSplits: 2).dropFirst().first, let status = Int(statusText)
        else {
            throw TestFailure("no HTTP reply to \(method) \(path): \(reply.debugDescription)")
        }
        let bodyStart = reply.range(of: "\r\n\r\n").map { reply[$0.upperBound...] } ?? ""
        return (status, String(bodyStart))
    }

    /// Everything the peer sends until it closes (or 20 s pass).
    func readAll(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }
}

/// Abusive API clients against the real daemon: every refusal is JSON with the right
/// status, nothing they send blocks the API for others, and nothing stays behind.
@Suite(.serialized, .tags(.daemon), .beyondTheUnitTier) struct DaemonHostileClientTests {
    @Test func everyRefusalIsJSONWithTheRightStatus() throws {
        let daemon = try DaemonProcess()
        let http = RawHTTP(socket: daemon.socket)
        let example = try TestImages.build("Configs/example-vmept2.yaml").folder
        let json = ["Content-Type": "application/json"]
        func expect(
            _ reply: (status: Int, body: String), _ status: Int, _ text: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            #expect(reply.status == status, "\(reply)", sourceLocation: sourceLocation)
            #expect(
                reply.body.hasPrefix("{\"error\":") && reply.body.contains(text), "\(reply)",
                sourceLocation: sourceLocation)
        }
        expect(try http.exchange("PUT", "/image-sets"), 405, "takes POST, GET, not PUT")
        expect(try http.exchange("GET", "/no/such/route"), 404, "there is no endpoint GET /no/such/route")
        expect(
            try http.exchange("POST", "/image-sets", headers: json, body: Array(repeating: 0x20, count: 100_000)), 413,
            "larger than")
        expect(
            try http.exchange(
                "POST", "/image-sets", headers: ["Content-Type": "text/plain"], body: Array("hello".utf8)), 415,
            "application/json")
        let launch = { (fields: String) in
            try http.exchange(
                "POST", "/image-sets", headers: json, body: Array("{\"path\": \"\(example)\", \(fields)}".utf8))
        }
        expect(try launch("\"memory\": -5"), 400, "`memory` has the wrong type or value")
        expect(try launch("\"memory\": 18446744073709551615"), 400, "is too large")
        expect(try launch("\"sharedMemory\": 18446744073709551615"), 400, "is too large")
        expect(try launch("\"memory\": 67108865"), 400, "not a multiple")
        expect(try launch("\"timeout\": 1e308"), 400, "is not a duration a run may have")
        expect(try launch("\"name\": \"\(String(repeating: "n", count: 300))\""), 400, "cannot name an image set")
        _ = try daemon.launch(example, name: "fine")
        expect(
            try http.exchange("GET", "/image-sets/fine/logs?compartment=nope"), 404, "has no compartment \\\"nope\\\"")
        #expect(try http.exchange("GET", "/image-sets/fi%6Ee").status == 200)
        #expect(try daemon.flexosctl(["list"]).status == 0)
    }

    @Test func fifosAndEscapingManifestsAreRefusedWithoutBlockingTheAPI() throws {
        let daemon = try DaemonProcess()
        let folder = NSTemporaryDirectory() + "flexos-daemon-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(mkfifo(folder + "/guest.elf", 0o600) == 0)
        #expect(mkfifo(folder + "/manifest.json", 0o600) == 0)
        for path in [folder + "/guest.elf", folder, folder + "/manifest.json"] {
            let result = try daemon.flexosctl(["launch", path])
            #expect(result.status == 1 && result.errors.contains("not a regular file"), "\(result.errors)")
        }
        // A manifest whose image climbs out of its folder.
        let escaping = folder + "-escape"
        try FileManager.default.createDirectory(atPath: escaping, withIntermediateDirectories: true)
        let example = try TestImages.build("Configs/example-vmept2.yaml")
        var manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: example.folder + "/manifest.json"))) as! [String: Any]
        manifest["image"] = "../../../../../../etc/shadow"
        try JSONSerialization.data(withJSONObject: manifest).write(
            to: URL(fileURLWithPath: escaping + "/manifest.json"))
        let result = try daemon.flexosctl(["launch", escaping])
        #expect(
            result.status == 1 && result.errors.contains("must be a file name in the manifest's own folder"),
            "\(result.errors)")
        #expect(try daemon.flexosctl(["list"]).status == 0)
    }

    @Test func aGroupMemberCannotLaunchWhatOnlyRootCanRead() throws {
        guard getuid() == 0 else {
            throw TestFailure("this test checks root's daemon against another user: run the tests as root, as CI does")
        }
        let daemon = try DaemonProcess(arguments: ["--socket-group", "nogroup"])
        // A copy of the example only root can read.
        let example = try TestImages.build("Configs/example-vmept2.yaml").folder
        let secret = NSTemporaryDirectory() + "flexos-rootonly-\(getpid())"
        try? FileManager.default.removeItem(atPath: secret)
        try FileManager.default.copyItem(atPath: example, toPath: secret)
        chmod(secret, 0o700)
        // As nobody (a member of nogroup), over the same socket.
        let reply = try launchAsNobody(daemon, body: "{\"path\": \"\(secret)\"}")
        #expect(reply.hasPrefix("HTTP/1.1 422") && reply.contains("Permission denied"), "\(reply)")
        // Root, the daemon's owner, still can.
        #expect(try daemon.launch(secret, name: "rootonly").name == "rootonly")
    }

    /// A group member once had the root daemon bind 0.0.0.0:81, which it could not bind itself.
    @Test func aGroupMemberListensOnlyWhereItCouldItself() throws {
        guard getuid() == 0 else {
            throw TestFailure("this test checks root's daemon against another user: run the tests as root, as CI does")
        }
        let appliance = try TestImages.build("Configs/kvstore-fcalls.yaml").folder
        let daemon = try DaemonProcess(arguments: ["--socket-group", "nogroup"])
        for address in ["0.0.0.0:6390", "127.0.0.1:81", "[::]:0"] {
            let reply = try launchAsNobody(daemon, body: "{\"path\": \"\(appliance)\", \"listen\": [\"\(address)\"]}")
            #expect(
                reply.hasPrefix("HTTP/1.1 403") && reply.contains("you may listen only on loopback addresses"),
                "\(address): \(reply)")
        }
        let allowed = try launchAsNobody(
            daemon, body: "{\"path\": \"\(appliance)\", \"name\": \"loopback\", \"listen\": [\"127.0.0.1:0\"]}")
        #expect(allowed.hasPrefix("HTTP/1.1 201"), "\(allowed)")
        _ = try daemon.flexosctl(["stop", "loopback"])
        // The daemon's own user is not bound by it, and --group-may-listen-anywhere lifts it.
        let open = try DaemonProcess(arguments: ["--socket-group", "nogroup", "--group-may-listen-anywhere"])
        let anywhere = try launchAsNobody(
            open,
            body: "{\"path\": \"\(appliance)\", \"name\": \"anywhere\", \"listen\": [\"127.0.0.1:0\", \"0.0.0.0:0\"]}")
        #expect(anywhere.hasPrefix("HTTP/1.1 201"), "\(anywhere)")
        _ = try open.flexosctl(["stop", "anywhere"])
    }

    /// Five 1 GiB launches in a 3 GiB cgroup once got the daemon OOM-killed, every set lost:
    /// a launch that would promise more than the cgroup allows is refused, naming why.
    @Test func launchesBeyondTheCgroupsMemoryAreRefused() throws {
        guard getuid() == 0 else {
            throw TestFailure("this test makes a memory cgroup: run the tests as root, as CI does")
        }
        let cgroup = try MemoryCgroup(limit: 3 << 30)
        defer { cgroup.remove() }
        let daemon = try DaemonProcess()
        try cgroup.add(daemon.process.processIdentifier)
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        var launched: [String] = []
        var refusal = ""
        for index in 0..<5 {
            let result = try daemon.flexosctl(["launch", ticker, "--name", "big\(index)", "--memory", "1G"])
            if result.status == 0 {
                launched.append("big\(index)")
            } else {
                refusal = result.errors
                break
            }
        }
        #expect(launched.count == 1, "two VMs of 1 GiB each: one set fits 3 GiB, a second does not (\(launched))")
        #expect(refusal.contains("the memory limit of flexosd's cgroup allows"), "\(refusal)")
        #expect(try daemon.flexosctl(["list"]).status == 0)
        for name in launched { _ = try daemon.flexosctl(["stop", name]) }
        // Once stopped, its memory is free to promise again.
        #expect(try daemon.flexosctl(["launch", ticker, "--name", "again", "--memory", "1G"]).status == 0)
        _ = try daemon.flexosctl(["stop", "again"])
    }

    /// A stop sent while a set was still launching returned success and was lost (3 of 15
    /// tries): the set ran on.
    @Test func aStopDuringTheLaunchIsHonoured() throws {
        let daemon = try DaemonProcess()
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        for attempt in 0..<15 {
            let name = "race\(attempt)"
            let socket = daemon.socket
            let launch = Thread {
                _ = try? Executables.run("flexosctl", ["launch", ticker, "--name", name, "--socket", socket])
            }
            launch.start()
            var stopped: Executables.Result?
            for _ in 0..<2000 {
                let result = try daemon.flexosctl(["stop", name])
                if result.status == 0 {
                    stopped = result
                    break
                }
            }
            #expect(stopped != nil, "\(name) was never there to stop")
            launch.cancel()
            let state = try daemon.waitForEnd(name, seconds: 5).state
            #expect(state == "stopped", "\(name) is \(state) after its stop")
        }
    }

    /// POST /image-sets with `body`, as nobody (a member of nogroup); the raw HTTP reply.
    private func launchAsNobody(_ daemon: DaemonProcess, body: String) throws -> String {
        let script = """
            import os, socket, sys
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            body = sys.argv[2].encode()
            s.sendall(b"POST /image-sets HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                reply += chunk
            print(reply.decode())
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, daemon.socket, body]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        python.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func launchesCanHaveATimeout() throws {
        let daemon = try DaemonProcess()
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        let result = try daemon.flexosctl(["launch", ticker, "--name", "brief", "--timeout", "300ms"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(try daemon.waitForEnd("brief").state == "timed out")
    }

    @Test func removedImageSetsLeaveNoMetricsBehind() async throws {
        let daemon = try DaemonProcess()
        let ticker = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        _ = try daemon.launch(ticker, name: "counted")
        let running = String(decoding: try await daemon.client.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(
            running.contains("flexosd_gate_calls_out{image_set=\"counted\",compartment=\"comp1\",engine=\"kvm\"}"),
            "\(running)")
        _ = try daemon.flexosctl(["stop", "counted"])
        _ = try daemon.flexosctl(["remove", "counted"])
        let after = String(decoding: try await daemon.client.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(!after.contains("image_set=\"counted\""))
    }

    @Test func aSilentConnectionIsClosed() throws {
        let daemon = try DaemonProcess(arguments: ["--idle-timeout", "1s"])
        let http = RawHTTP(socket: daemon.socket)
        let silent = try http.connect()
        defer { close(silent) }
        let half = try http.connect()
        defer { close(half) }
        _ = Array("GET /image-sets HTTP/1.1\r\nHost: x\r\n".utf8).withUnsafeBytes {
            send(half, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
        }
        let started = Date()
        #expect(http.readAll(silent).isEmpty)
        _ = http.readAll(half)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func hostileGuestsEndAloneWhileABystanderKeepsRunning() throws {
        let daemon = try DaemonProcess()
        _ = try daemon.launch(try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder, name: "bystander")
        let hostile = [
            "Tests/Guests/hypercallstorm", "Tests/Guests/consolesmash", "Tests/Guests/oddjump",
            "Tests/Guests/panicline",
            "Tests/Guests/nullread", "Tests/Guests/badgate-vmept2.yaml", "Tests/Guests/wakeflood-vmept2.yaml"
        ]
        for (index, target) in hostile.enumerated() {
            let name = "hostile\(index)"
            _ = try daemon.launch(try TestImages.build(target).folder, name: name)
            // The storm makes a million hypercalls before its garbage: a second of it will do.
            if target.hasSuffix("hypercallstorm") {
                usleep(1_000_000)
                _ = try daemon.flexosctl(["stop", name])
            }
            let ended = try daemon.waitForEnd(name)
            #expect(ended.state != "running", "\(target)")
        }
        #expect(try daemon.status("bystander").state == "running")
        let before = try daemon.flexosctl(["logs", "bystander"]).output.count
        usleep(300_000)
        #expect(try daemon.flexosctl(["logs", "bystander"]).output.count > before, "the bystander stopped printing")
        _ = try daemon.flexosctl(["stop", "bystander"])
        #expect(daemon.stopAndReadLog().contains("image set ended"))
    }
}

/// The OpenAPI document describes exactly the routes the daemon serves.
@Suite(.tags(.unit)) struct OpenAPIDocumentTests {
    @Test func itsPathsAndMethodsAreTheRoutes() throws {
        let document = try #require(try Yams.load(yaml: OpenAPIDocument.yaml) as? [String: Any])
        #expect(document["openapi"] as? String == "3.0.3")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let methods = ["get", "put", "post", "delete", "patch"]
        let described = paths.flatMap { path, operations in
            operations.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" }
        }
        #expect(Set(described) == Set(OpenAPIDocument.routes))
        #expect(described.count == OpenAPIDocument.routes.count)
    }

    @Test(.tags(.daemon), .beyondTheUnitTier) func theDaemonServesIt() async throws {
        let daemon = try DaemonProcess()
        let reply = try await daemon.client.send(.GET, "/openapi.yaml")
        #expect(String(decoding: reply.body, as: UTF8.self) == OpenAPIDocument.yaml)
    }
}
/// A memory cgroup made for one test (cgroup v1 or v2, whichever this host mounts).
struct MemoryCgroup {
    let path: String
    let procs: String

    init(limit: UInt64) throws {
        let name = "flexos-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let candidates = [
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max"),
            ("/sys/fs/cgroup/unified", "memory.max")
        ]
        for (root, file) in candidates where FileManager.default.fileExists(atPath: root + "/cgroup.procs") {
            let path = root + "/" + name
            guard mkdir(path, 0o755) == 0 else { continue }
            guard FileManager.default.fileExists(atPath: path + "/" + file),
                (try? "\(limit)".write(toFile: path + "/" + file, atomically: false, encoding: .utf8)) != nil
            else {
                rmdir(path)
                continue
            }
            self.path = path
            procs = path + "/cgroup.procs"
            return
        }
        throw TestFailure(
            "no memory cgroup could be made under /sys/fs/cgroup (memory controller not mounted or not writable)")
    }

    func add(_ pid: Int32) throws {
        do { try "\(pid)".write(toFile: procs, atomically: false, encoding: .utf8) } catch {
            throw TestFailure("cannot move process \(pid) into \(path): \(error)")
        }
    }

    /// Moves what is left back to the root and removes the cgroup.
    func remove() {
        let root = (path as NSString).deletingLastPathComponent
        for pid in ((try? String(contentsOfFile: procs, encoding: .utf8)) ?? "").split(separator: "\n") {
            try? String(pid).write(toFile: root + "/cgroup.procs", atomically: false, encoding: .utf8)
        }
        rmdir(path)
    }
}
