import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import Monitor
import NetworkDevice
import Testing

/// The kvstore appliance, booted on real VMs with its network device listening on a free
/// port of 127.0.0.1, for one test.
final class KeyValueServer {
    let run: ImageSetRun
    let port: UInt16
    /// What the store printed (a panic's message, when it died).
    let console = CapturedConsole()

    init(
        _ target: String, memory: UInt64 = ImageSetLayout.defaultMemory,
        sharedMemory: UInt64 = ImageSetLayout.defaultSharedMemory,
        clientIdleTimeout: Double = LaunchOptions.defaultClientIdleTimeout, doorbells: Bool = true,
        sleepInKernel: Bool = true
    ) throws {
        let folder = try TestImages.build(target).folder
        vmLock.lock()
        do {
            var options = LaunchOptions(
                memory: memory, sharedMemory: sharedMemory, listen: [try ListenAddress.parse("127.0.0.1:0")],
                clientIdleTimeout: clientIdleTimeout)
            options.doorbells = doorbells
            options.sleepInKernel = sleepInKernel
            run = try ImageSetRun(
                try ImageSet.open(folder), options: options, hypervisor: try requireKVM(), console: console,
                devices: deviceProviders)
        } catch {
            vmLock.unlock()
            throw error
        }
        port = run.listening.first.flatMap { try? ListenAddress.parse($0).port } ?? 0
    }

    private var report: RunReport?

    /// Stops the set and returns its report; again, the same report.
    @discardableResult
    func stop() -> RunReport {
        if let report { return report }
        defer { vmLock.unlock() }
        run.stop(reason: "the test is over")
        let report = run.wait(timeout: 10)
        self.report = report
        return report
    }

    /// How the run ended, with the fault report when it faulted: for a test's message.
    func endText() -> String {
        let report = stop()
        return "\(report.outcome): \(report.message ?? "")\n\(report.fault?.render() ?? "")"
    }

    /// redis-cli against this server: `arguments`, with `input` on its standard input.
    func cli(_ arguments: [String], input: Data? = nil) throws -> Data {
        try Redis.run("redis-cli", ["-p", "\(port)"] + arguments, input: input)
    }

    func cliText(_ arguments: [String], input: String? = nil) throws -> String {
        String(decoding: try cli(arguments, input: input.map { Data($0.utf8) }), as: UTF8.self)
    }
}

/// The real Redis clients (Debian's redis-tools, which scripts/setup.sh installs).
enum Redis {
    static func run(_ tool: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let path = "/usr/bin/" + tool
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is missing: scripts/setup.sh installs redis-tools")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        let feed = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = input == nil ? FileHandle.nullDevice : feed
        try process.run()
        if let input {
            DispatchQueue.global().async {
                feed.fileHandleForWriting.write(input)
                try? feed.fileHandleForWriting.close()
            }
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }
}

/// A TCP client that sends raw bytes: what a broken or hostile client does.
final class RawConnection {
    let fd: Int32

    /// The port this end of the connection has (getsockname).
    var localPort: UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 || (errno == EINTR && RawConnection.finishConnecting(fd)) else {
            // Not closed here: a class whose initializer throws once every property is set
            // still runs its deinit, which closes it. Closing twice closed, at times, the fd a
            // vCPU of another test had just been given ("mmap of kvm_run failed: Bad file descriptor").
            let code = errno
            throw TestFailure("cannot connect to port \(port): \(String(cString: strerror(code)))")
        }
    }

    /// A connect(2) a signal interrupted goes on in the background (this process's vCPU
    /// threads are kicked with signals): wait for it, then read how it ended.
    private static func finishConnecting(_ fd: Int32) -> Bool {
        var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            let result = poll(&ready, 1, 10_000)
            if result < 0 && errno == EINTR { continue }
            guard result == 1 else { return false }
            break
        }
        var failure: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0, failure == 0 else {
            errno = failure
            return false
        }
        return true
    }

    deinit { close(fd) }

    /// Sends all of `bytes`, or stops when the peer takes none for 10 s (a store that has
    /// stopped reading must fail the test, not hang it).
    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            sent += count
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Sends a FIN: the client has said all it will, and still reads (`nc -N`).
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until `done` holds for what arrived, the peer closes, or 10 s pass.
    func read(until done: (String) -> Bool = { _ in false }) -> (text: String, closed: Bool) {
        let (bytes, closed) = readBytes { done(String(decoding: $0, as: UTF8.self)) }
        return (String(decoding: bytes, as: UTF8.self), closed)
    }

    /// Reads until `done` holds for the bytes that arrived (for large replies: no text is
    /// made of them on the way), the peer closes, or 10 s pass.
    func readBytes(until done: ([UInt8]) -> Bool) -> (bytes: [UInt8], closed: Bool) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(10)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) && Date() < deadline { continue }
            if count <= 0 { return (bytes, count == 0) }
            bytes += buffer[0..<count]
            if done(bytes) { return (bytes, false) }
        }
    }
}

/// The FlexOS Redis layouts (Configs/kvstore-*.yaml): every one must serve real clients.
let keyValueConformations = [
    "Configs/kvstore-fcalls.yaml", "Configs/kvstore-net-vmept2.yaml", "Configs/kvstore-parser-vmept2.yaml",
    "Configs/kvstore-vmept3.yaml", "Configs/kvstore-fcalls-hardened.yaml",
    "Configs/kvstore-parser-vmept2-hardened.yaml",
    "Configs/kvstore-vmept3-hardened.yaml"
]

@Suite(.serialized, .tags(.boot, .redis), .beyondTheUnitTier) struct KeyValueApplianceTests {
    /// Each command redis-cli sends, and what Redis answers (redis-cli's plain output: an
    /// error is followed by an empty line; nil prints as an empty line; "*" is not checked).
    static let script: [(command: String, reply: String)] = [
        ("PING", "PONG"), ("ECHO hello", "hello"),
        ("SET k1 v1", "OK"), ("GET k1", "v1"), ("SET k1 v2 XX", "OK"), ("SET k1 v3 NX", ""), ("GET k1", "v2"),
        ("SET k2 v EX 100", "OK"), ("TTL k2", "100"), ("SET k3 v PX 100000", "OK"), ("EXPIRE k1 50", "1"),
        ("TTL k1", "50"),
        ("TTL nokey", "-2"), ("EXISTS k1 k2 nokey", "2"), ("DEL k1 nokey", "1"), ("GET k1", ""),
        ("INCR n", "1"), ("INCRBY n 41", "42"), ("DECR n", "41"),
        ("INCR k2", "ERR value is not an integer or out of range"),
        ("APPEND s abc", "3"), ("APPEND s def", "6"), ("STRLEN s", "6"),
        ("MSET a 1 b 2", "OK"), ("MGET a b nokey", "1\n2\n"),
        ("RPUSH l x y z", "3"), ("LPUSH l w", "4"), ("LLEN l", "4"), ("LRANGE l 0 -1", "w\nx\ny\nz"), ("LPOP l", "w"),
        ("RPOP l", "z"),
        ("GET l", "WRONGTYPE Operation against a key holding the wrong kind of value"),
        ("SADD set a b c a", "3"), ("SCARD set", "3"), ("SPOP set", nil), ("SCARD set", "2"),
        ("HSET h f1 v1 f2 v2", "2"), ("HGET h f2", "v2"), ("HGET h nofield", ""),
        ("ZADD z 2 two 1 one 3 three", "3"), ("ZPOPMIN z", "one\n1"),
        ("SELECT 0", "OK"), ("SELECT 1", "ERR DB index is out of range"), ("CONFIG GET appendonly", "appendonly\nno"),
        ("CONFIG GET APPENDONLY appendonly databas?s", "APPENDONLY\nno\ndatabases\n1"), ("CONFIG GET nothing*", ""),
        ("CLIENT SETNAME tester", "OK"), ("COMMAND", ""), ("DBSIZE", "10"),
        ("FROBNICATE x", "ERR unknown command 'FROBNICATE', with args beginning with: 'x'"),
        ("FLUSHALL", "OK"), ("DBSIZE", "0")
    ].map { command, reply in
        guard let reply else { return (command, "*") }
        return (command, reply.hasPrefix("ERR") || reply.hasPrefix("WRONGTYPE") ? reply + "\n" : reply)
    }

    @Test(arguments: keyValueConformations)
    func everyCommandRoundTripsThroughRedisCLI(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let output = try server.cliText(
            [], input: KeyValueApplianceTests.script.map(\.command).joined(separator: "\n") + "\n")
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (command, reply) in KeyValueApplianceTests.script {
            let expected = reply.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let got = Array(lines.prefix(expected.count)).map { $0.trimmingCharacters(in: .whitespaces) }
            lines.removeFirst(min(expected.count, lines.count))
            if reply != "*" { #expect(got == expected, "\(command) in \(conformation)") }
        }
        #expect(try server.cliText(["INFO"]).contains("redis_version:"))
        // QUIT is answered, then the connection closes.
        let connection = try RawConnection(port: server.port)
        connection.send("QUIT\r\n")
        let quit = connection.read()
        #expect(quit.text == "+OK\r\n" && quit.closed, "QUIT got \(quit.text.debugDescription), closed: \(quit.closed)")
    }

    @Test(arguments: keyValueConformations)
    func aPipelineOfTenThousandCommandsAndLargeBinaryValues(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        var pipeline = ""
        for index in 0..<10_000 {
            let key = "key:\(index)"
            let value = "value-\(index)"
            pipeline += "*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.utf8.count)\r\n\(value)\r\n"
        }
        let piped = try server.cliText(["--pipe"], input: pipeline)
        #expect(piped.contains("errors: 0, replies: 10000"), "\(piped)")
        #expect(try server.cliText(["DBSIZE"]) == "10000\n")
        #expect(try server.cliText(["GET", "key:9999"]) == "value-9999\n")

        // 1 MiB of random bytes with NUL and CRLF inside, through redis-cli -x.
        var value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) }
        value += [0, 13, 10, 0, 65, 13, 10]
        #expect(try server.cli(["-x", "SET", "big"], input: Data(value)) == Data("OK\n".utf8))
        #expect(try server.cli(["GET", "big"]) == Data(value + [10]))
        #expect(try server.cliText(["STRLEN", "big"]) == "\(value.count)\n")
    }

    @Test(arguments: keyValueConformations)
    func twoHundredConcurrentClients(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let output = String(
            decoding: try Redis.run(
                "redis-benchmark", ["-p", "\(server.port)", "-c", "200", "-n", "4000", "-t", "set,get", "-q"]),
            as: UTF8.self)
        let results = output.split(separator: "\r").flatMap { $0.split(separator: "\n") }.filter {
            $0.contains("requests per second")
        }
        #expect(results.count == 2, "\(output)")
        #expect(!output.contains("Error"), "\(output)")
        let network = try #require(server.run.inspect().compactMap(\.devices).joined().first { $0.kind == "net" })
        #expect(network.counters["accepted", default: 0] >= 200)
        #expect(network.counters["refused"] == 0)
    }

    @Test(arguments: keyValueConformations)
    func brokenAndHostileClientsDoNotDisturbTheOthers(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let steady = try RawConnection(port: server.port)
        steady.send("*3\r\n$3\r\nSET\r\n$6\r\nsteady\r\n$2\r\nok\r\n")
        #expect(steady.read { $0.hasSuffix("\r\n") }.text == "+OK\r\n")

        let malformed: [(String, String)] = [
            ("*1\r\n$2147483648\r\n", "invalid bulk length"), ("*2\r\n$-5\r\nab\r\n", "invalid bulk length"),
            ("*1\r\n$abc\r\n", "invalid bulk length"), ("*99999999999\r\n", "invalid multibulk length"),
            ("*2\r\n$3\r\nGET\r\nxx\r\n", "expected '$', got 'x'"),
            (String(repeating: "x", count: 70_000), "too big inline request")
        ]
        for (request, error) in malformed {
            let client = try RawConnection(port: server.port)
            client.send(request)
            let answer = client.read()
            #expect(
                answer.text == "-ERR Protocol error: \(error)\r\n" && answer.closed,
                "\(request.prefix(30).debugDescription) in \(conformation): got \(answer.text.debugDescription), closed: \(answer.closed)"
            )
        }
        // Garbage, then gone before any reply; a command cut in half; a large reply never read.
        try RawConnection(port: server.port).send((0..<4096).map { _ in UInt8.random(in: 0...255) })
        try RawConnection(port: server.port).send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
        _ = try server.cli(["-x", "SET", "large"], input: Data(repeating: 120, count: 4 << 20))
        try RawConnection(port: server.port).send("*2\r\n$3\r\nGET\r\n$5\r\nlarge\r\n")

        steady.send("*2\r\n$3\r\nGET\r\n$6\r\nsteady\r\n")
        #expect(steady.read { $0.hasSuffix("ok\r\n") }.text == "$2\r\nok\r\n")
        #expect(try server.cliText(["PING"]) == "PONG\n")
        #expect(server.run.isFinished == false)
    }

    @Test(arguments: keyValueConformations)
    func aFullHeapAnswersOutOfMemory(_ conformation: String) throws {
        let server = try KeyValueServer(conformation, memory: 8 << 20)
        defer { server.stop() }
        let value = String(repeating: "v", count: 65536)
        var pipeline = ""
        for index in 0..<200 {
            pipeline += "*3\r\n$3\r\nSET\r\n$\("k\(index)".utf8.count)\r\nk\(index)\r\n$65536\r\n\(value)\r\n"
        }
        let piped = try server.cliText(["--pipe"], input: pipeline)
        #expect(piped.contains("OOM command not allowed when used memory > 'maxmemory'."), "\(piped.suffix(300))")
        #expect(try server.cliText(["PING"]) == "PONG\n")
        #expect(try server.cliText(["GET", "k0"]) == value + "\n")
        #expect(server.run.isFinished == false)
    }

    @Test func stoppingClosesTheListeners() throws {
        let server = try KeyValueServer("Configs/kvstore-fcalls.yaml")
        #expect(try server.cliText(["PING"]) == "PONG\n")
        let report = server.stop()
        #expect(report.outcome == "stopped")
        #expect(report.devices.first { $0.kind == "net" }?.counters["accepted", default: 0] ?? 0 >= 1)
        #expect(throws: TestFailure.self) { try RawConnection(port: server.port) }
    }

    @Test func aGuestThatCorruptsTheDeviceIsReportedAndTheMonitorStaysUp() throws {
        let server = try KeyValueServer("Tests/Guests/netcorrupt")
        let client = try RawConnection(port: server.port)
        client.send("PING\r\n")
        let deadline = Date().addingTimeInterval(10)
        while !server.run.isFinished && Date() < deadline { usleep(10_000) }
        let report = server.stop()
        let fault = try #require(report.fault, "\(report)")
        #expect(fault.kind == .deviceViolation)
        #expect(fault.summary.contains("transmit head"), "\(fault.summary)")
        #expect(fault.render().contains("the network device, mapped only in compartment"))
        #expect(client.read().closed)
    }

    @Test func listeningNeedsANetworkDevice() throws {
        let folder = try TestImages.build("Guest/Apps/hello").folder
        let options = LaunchOptions(listen: [try ListenAddress.parse("127.0.0.1:0")])
        #expect {
            _ = try ImageSetRun(
                try ImageSet.open(folder), options: options, hypervisor: try requireKVM(), console: CapturedConsole(),
                devices: deviceProviders)
        } throws: { error in
            "\(error)".contains("it has no network device (no library of it declares `devices: [net]`)")
        }
    }

    @Test func listenAddressesAreChecked() throws {
        #expect(try ListenAddress.parse("127.0.0.1:6379") == ListenAddress(host: "127.0.0.1", port: 6379))
        #expect(try ListenAddress.parse("[::1]:0").description == "[::1]:0")
        #expect(try ListenAddress.parse("localhost:7").host == "127.0.0.1")
        for bad in ["6379", "127.0.0.1:70000", "127.0.0.1:-1", "example.com:80", ":80", "1.2.3.4:"] {
            #expect(throws: ListenAddressError.self, "\(bad)") { try ListenAddress.parse(bad) }
        }
    }
}
