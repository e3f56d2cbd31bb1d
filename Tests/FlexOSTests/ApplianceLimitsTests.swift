import Foundation
import Testing

/// One RESP command as a client encodes it.
func resp(_ arguments: [[UInt8]]) -> [UInt8] {
    var bytes = Array("*\(arguments.count)\r\n".utf8)
    for argument in arguments { bytes += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
    return bytes
}

func resp(_ arguments: String...) -> [UInt8] { resp(arguments.map { Array($0.utf8) }) }

/// The kvstore appliance at the edges of its memory, as a hostile or careless client finds
/// them: every command either completes or answers -OOM with the data untouched, a reply is
/// whole or not sent, a header alone reserves nothing, and no command stalls the store.
/// The network and parser in the store's VM (fcalls) and in a VM of their own (vmept).
@Suite(.serialized, .tags(.boot, .redis), .beyondTheUnitTier) struct ApplianceLimitsTests {
    static let conformations = ["Configs/kvstore-fcalls.yaml", "Configs/kvstore-parser-vmept2.yaml"]

    /// APPENDs of 1 MiB once made the value's storage double past the heap and fault.
    @Test(arguments: conformations)
    func appendingPastTheLimitAnswersOutOfMemoryAndKeepsTheValue(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        let megabyte = [UInt8](repeating: 0x61, count: 1 << 20)
        var appended = 0
        var refused = false
        for _ in 0..<60 where !refused {
            client.send(resp([Array("APPEND".utf8), Array("a".utf8), megabyte]))
            let reply = client.read { $0.hasSuffix("\r\n") }.text
            if reply.hasPrefix(":") {
                appended += 1
            } else {
                refused = reply.hasPrefix("-OOM")
                #expect(refused, "\(reply)")
            }
        }
        #expect(refused && appended > 8, "\(appended) appended")
        client.send(resp("STRLEN", "a") + resp("PING"))
        #expect(client.read { $0.hasSuffix("+PONG\r\n") }.text == ":\(appended << 20)\r\n+PONG\r\n")
        #expect(!server.run.isFinished)
    }

    /// LPOP of more than the shared heap can carry back once emptied the list, then
    /// answered -OOM: the data was lost.
    /// A glob with many stars against a long key (KEYS, SCAN MATCH) answers at once: trying
    /// every split of every `*` took exponential time and stalled every client.
    @Test(arguments: conformations)
    func aPatternOfManyStarsDoesNotStallTheStore(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        let pattern = String(repeating: "*a", count: 20) + "*b"
        let started = Date()
        client.send(
            resp("SET", String(repeating: "a", count: 80), "v") + resp("KEYS", pattern)
                + resp("SCAN", "0", "MATCH", pattern)
                + resp("KEYS", "a*a?[a-c]*"))
        let expected = "+OK\r\n*0\r\n*2\r\n$1\r\n0\r\n*0\r\n*1\r\n$80\r\n" + String(repeating: "a", count: 80) + "\r\n"
        #expect(client.read { $0.hasSuffix(String(repeating: "a", count: 80) + "\r\n") }.text == expected)
        #expect(Date().timeIntervalSince(started) < 2, "the store took \(Date().timeIntervalSince(started)) s")
    }

    /// WATCH copies its keys into the store: a client that watches without end meets -OOM,
    /// and the store serves on (it once had no bound: a full heap traps the compartment).
    @Test(arguments: conformations)
    func watchingWithoutEndAnswersOutOfMemory(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        var reply = ""
        for round in 0..<40 where !reply.hasPrefix("-OOM") {
            let keys = (0..<500).map { Array("k\(round)-\($0)-".utf8) + [UInt8](repeating: 0x78, count: 10_000) }
            client.send(resp([Array("WATCH".utf8)] + keys))
            reply = client.read { $0.hasSuffix("\r\n") }.text
        }
        #expect(reply == "-OOM command not allowed when used memory > 'maxmemory'.\r\n", "\(reply)")
        client.send(resp("UNWATCH") + resp("SET", "a", "b") + resp("MULTI") + resp("GET", "a") + resp("EXEC"))
        #expect(
            client.read { $0.hasSuffix("*1\r\n$1\r\nb\r\n") }.text
                == "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\nb\r\n")
    }

    @Test(arguments: conformations)
    func aPopWhoseReplyCannotBeSentLosesNothing(_ conformation: String) throws {
        let server = try KeyValueServer(conformation, sharedMemory: 8 << 20)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        let value = [UInt8](repeating: 0x76, count: 65536)
        for _ in 0..<200 {
            client.send(resp([Array("RPUSH".utf8), Array("l".utf8), value]))
            _ = client.read { $0.hasSuffix("\r\n") }
        }
        client.send(resp("LPOP", "l", "200"))
        #expect(client.read { $0.hasSuffix("\r\n") }.text.hasPrefix("-OOM"))
        client.send(resp("LLEN", "l"))
        #expect(client.read { $0.hasSuffix("\r\n") }.text == ":200\r\n")
        client.send(resp("LPOP", "l", "10"))
        #expect(client.readBytes { $0.count >= 10 * 65545 }.bytes.starts(with: Array("*10\r\n$65536\r\n".utf8)))
    }

    /// GET of a 16 MiB value (the largest a bulk string may be) once sent its header and
    /// no body, and the client read the next reply as its bytes.
    @Test(arguments: conformations)
    func aSixteenMebibyteValueRoundTripsAndTheConnectionStaysInStep(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        let value = [UInt8](repeating: 0x79, count: 16 << 20)
        client.send(resp([Array("SET".utf8), Array("big".utf8), value]))
        #expect(client.read { $0.hasSuffix("\r\n") }.text == "+OK\r\n")
        client.send(resp("GET", "big") + resp("PING"))
        let expected = Array("$16777216\r\n".utf8) + value + Array("\r\n+PONG\r\n".utf8)
        let reply = client.readBytes { $0.count >= expected.count }.bytes
        #expect(reply == expected, "\(reply.count) bytes: \(String(decoding: reply.prefix(40), as: UTF8.self))...")
    }

    /// Seven connections that each sent only `*1\r\n$16777216\r\n` once reserved 32 MiB
    /// apiece and every new client was closed unanswered.
    @Test(arguments: conformations)
    func bulkHeadersAloneReserveNothing(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let held = try (0..<12).map { _ in try RawConnection(port: server.port) }
        for connection in held { connection.send("*1\r\n$16777216\r\n") }
        Thread.sleep(forTimeInterval: 0.5)
        let client = try RawConnection(port: server.port)
        client.send(resp("SET", "k", "v") + resp("GET", "k"))
        #expect(client.read { $0.hasSuffix("$1\r\nv\r\n") }.text == "+OK\r\n$1\r\nv\r\n")
    }

    /// A command whose batch frame cannot fit the shared heap even alone was retried every
    /// turn for ever, unanswered, while the store spun a core.
    @Test func aCommandTooLargeForTheSharedHeapIsRefusedOnce() throws {
        let server = try KeyValueServer("Configs/kvstore-parser-vmept2.yaml", sharedMemory: 24 << 20)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        client.send(resp([Array("DEL".utf8)] + [[UInt8]](repeating: Array("ab".utf8), count: (1 << 19) - 1)))
        #expect(
            client.read { $0.hasSuffix("\r\n") }.text
                == "-OOM the command does not fit the shared heap between the parser and the store\r\n")
        client.send(resp("PING"))
        #expect(client.read { $0.hasSuffix("\r\n") }.text == "+PONG\r\n")
    }

    /// `printf 'SET a b\r\nGET a\r\n' | nc -N`: the client sends, then its FIN. The device
    /// once stopped sending at the FIN, so it got no reply (redis-server answers both).
    @Test(arguments: conformations)
    func aClientThatHalfClosesStillGetsItsReplies(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        client.send("SET a b\r\nGET a\r\n")
        client.finishSending()
        let reply = client.read()
        #expect(reply.text == "+OK\r\n$1\r\nb\r\n" && reply.closed, "\(reply)")
    }

    /// Connections that stay silent held their slots for as long as they stayed (256 of them
    /// locked every other client out): now the device closes them after the idle timeout.
    @Test func idleConnectionsAreClosedAfterTheTimeout() throws {
        let server = try KeyValueServer("Configs/kvstore-parser-vmept2.yaml", clientIdleTimeout: 1)
        defer { server.stop() }
        let silent = try (0..<300).map { _ in try RawConnection(port: server.port) }
        Thread.sleep(forTimeInterval: 2.5)
        let late = try RawConnection(port: server.port)
        late.send(resp("PING") + resp("CONFIG", "GET", "timeout"))
        #expect(late.read { $0.hasSuffix("$1\r\n1\r\n") }.text == "+PONG\r\n*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n")
        for connection in silent.prefix(3) { #expect(connection.read().closed) }
        let network = try #require(server.run.inspect().compactMap(\.devices).joined().first { $0.kind == "net" })
        #expect(network.counters["timedOut", default: 0] >= 300, "\(network)")
    }

    /// A byte every 200 ms kept a connection alive for ever (slowloris): bytes that bring
    /// no reply are not progress, so it is closed after the idle timeout like a silent one.
    @Test func aTrickleOfBytesIsClosedLikeSilence() throws {
        let server = try KeyValueServer("Configs/kvstore-parser-vmept2.yaml", clientIdleTimeout: 1)
        defer { server.stop() }
        let slow = try RawConnection(port: server.port)
        var closed = false
        let command = resp("SET", "slow", String(repeating: "x", count: 64))
        for byte in command where !closed {
            slow.send([byte])
            Thread.sleep(forTimeInterval: 0.2)
            var probe: UInt8 = 0
            closed = recv(slow.fd, &probe, 1, Int32(MSG_DONTWAIT)) == 0
        }
        #expect(closed, "the connection survived \(command.count) bytes at 5 a second")
    }

    /// Redis serves 10,000 clients by default (maxclients); the device had 256 slots and reset
    /// connections beyond 512. Ten thousand connect at once and each is answered.
    /// (The appliance runs in a flexosd process of its own here: this process's 10,000 client
    /// sockets and the monitor's 10,000 would not fit one process's limit of open files.)
    @Test(arguments: conformations)
    func tenThousandConcurrentConnections(_ conformation: String) throws {
        let folder = try TestImages.build(conformation).folder
        let flexosd = Process()
        flexosd.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosd")
        flexosd.arguments = ["launch", "--listen", "127.0.0.1:0", "--timeout", "120s", folder]
        let errors = Pipe()
        flexosd.standardError = errors
        flexosd.standardOutput = FileHandle.nullDevice
        try flexosd.run()
        defer {
            flexosd.terminate()
            flexosd.waitUntilExit()
        }
        var announced = ""
        while !announced.contains(" listening on ") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            announced += String(decoding: chunk, as: UTF8.self)
        }
        let port = try #require(
            announced.split(separator: "\n").first { $0.contains(" listening on ") }?.split(separator: ":").last.flatMap
            { UInt16($0) },
            "flexosd said: \(announced)")
        let clients = try (0..<10_000).map { _ in try RawConnection(port: port) }
        for client in clients { client.send(resp("PING")) }
        var answered = 0
        for client in clients where client.read(until: { $0.hasSuffix("\r\n") }).text == "+PONG\r\n" { answered += 1 }
        #expect(answered == 10_000)
        clients[9_999].send(resp("SET", "last", "one") + resp("GET", "last"))
        #expect(clients[9_999].read { $0.hasSuffix("one\r\n") }.text == "+OK\r\n$3\r\none\r\n")
    }

    /// 250,000 ZADDs once went past the memory limit (55.7 of 50.1 MB), after which ZPOPMIN
    /// of them all faulted: each member is charged its slots too, so the adds stop at -OOM
    /// and what is stored can still be popped in one reply.
    @Test func aSortedSetFillingTheHeapStopsAtTheLimitAndPopsWhole() throws {
        let server = try KeyValueServer("Configs/kvstore-fcalls.yaml")
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        var pipeline: [UInt8] = []
        let member = String(repeating: "m", count: 100)
        for index in 0..<250_000 { pipeline += resp("ZADD", "z", "\(index)", "\(member)\(index)") }
        client.send(pipeline)
        let replies = client.readBytes { $0.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } >= 250_000 }.bytes
        let lines = String(decoding: replies, as: UTF8.self).split(separator: "\r\n")
        let added = lines.filter { $0 == ":1" }.count
        let refused = lines.filter { $0.hasPrefix("-OOM") }.count
        #expect(added + refused == 250_000 && refused > 0, "\(added) added, \(refused) refused")
        client.send(resp("ZCARD", "z"))
        #expect(client.read { $0.hasSuffix("\r\n") }.text == ":\(added)\r\n")
        client.send(resp("ZPOPMIN", "z", "250000") + resp("PING"))
        let popped = client.readBytes { $0.count > 4 && Array($0.suffix(7)) == Array("+PONG\r\n".utf8) }.bytes
        #expect(
            popped.starts(with: Array("*\(2 * added)\r\n".utf8)) || popped.starts(with: Array("-OOM".utf8)),
            "\(String(decoding: popped.prefix(60), as: UTF8.self))")
        #expect(!server.run.isFinished)
    }

    /// SPOP and ZPOPMIN of 200,000 members took one pass over the rest per member (and a
    /// free per member walked the heap's whole free list): 72 s of every client stalled.
    /// Each read here gives up after 10 s.
    @Test(arguments: conformations)
    func poppingTwoHundredThousandMembersIsOnePass(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let client = try RawConnection(port: server.port)
        for (add, pop, key) in [("SADD", "SPOP", "s"), ("ZADD", "ZPOPMIN", "z")] {
            var pipeline: [UInt8] = []
            for index in 0..<200_000 {
                pipeline += add == "SADD" ? resp(add, key, "\(index)") : resp(add, key, "\(index)", "m\(index)")
            }
            client.send(pipeline)
            var replies = 0
            _ = client.read { text in
                replies = text.utf8.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
                return replies >= 200_000
            }
            #expect(replies == 200_000)
            client.send(resp(pop, key, "200000") + resp("EXISTS", key))
            let reply = client.read { $0.hasSuffix("\r\n:0\r\n") }
            #expect(
                reply.text.hasPrefix(add == "SADD" ? "*200000\r\n" : "*400000\r\n") && reply.text.hasSuffix(":0\r\n"),
                "\(pop): \(reply.text.prefix(40))")
        }
    }
}
