import FlexOS

/// The connection's own commands, which resp answers since it alone knows the connection:
/// CLIENT ID, SETNAME, GETNAME, INFO, LIST and REPLY; HELLO (choosing RESP2 or RESP3);
/// RESET; AUTH, refused as Redis refuses it where no password is configured.
enum ConnectionCommands {
    /// Names live in resp's own heap, which ten thousand clients share: Redis has no limit,
    /// but a few clients naming themselves with 16 MiB would exhaust it.
    static let maximumName = 1024
    static let nameTooLong: StaticString = "ERR Client names are limited to 1024 bytes by this server"

    /// Redis's number for the next connection: 1, 2, ... in the order they came.
    nonisolated(unsafe) static var nextNumber: UInt64 = 1

    /// Answers `client`'s command if it is one of these; false when it is not.
    static func collect(_ client: Client, _ arguments: [(Int, Int)], base: UnsafePointer<UInt8>, entries: inout [BatchEntry])
        -> Bool
    {
        func argument(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: base + arguments[index].0, count: arguments[index].1)
        }
        let name = argument(0)
        var reply = Reply(client.protocolVersion)
        // In MULTI, CLIENT, HELLO and AUTH are queued (and refused by the store at EXEC);
        // RESET is not, as in Redis.
        if client.transaction != nil && !equalsIgnoringCase(name, "reset") { return false }
        if equalsIgnoringCase(name, "client") {
            guard arguments.count >= 2 else { return refuse(client, "-ERR wrong number of arguments for 'client' command\r\n", &entries) }
            clientCommand(client, argument, count: arguments.count, &reply)
        } else if equalsIgnoringCase(name, "hello") {
            hello(client, argument, count: arguments.count, &reply)
        } else if equalsIgnoringCase(name, "auth") {
            guard arguments.count == 2 || arguments.count == 3 else {
                return refuse(client, "-ERR wrong number of arguments for 'auth' command\r\n", &entries)
            }
            reply.error(arguments.count == 2
                ? "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                : "WRONGPASS invalid username-password pair or user is disabled.")
        } else if equalsIgnoringCase(name, "reset") {
            guard arguments.count == 1 else { return refuse(client, "-ERR wrong number of arguments for 'reset' command\r\n", &entries) }
            reset(client, &entries)
            reply = Reply(client.protocolVersion)
            reply.simple("RESET")
        } else {
            return false
        }
        entries.append(.text(client, reply.bytes))
        return true
    }

    private static func refuse(_ client: Client, _ text: StaticString, _ entries: inout [BatchEntry]) -> Bool {
        entries.append(.refused(client, text))
        return true
    }

    private static func clientCommand(
        _ client: Client, _ argument: (Int) -> UnsafeBufferPointer<UInt8>, count: Int, _ reply: inout Reply
    ) {
        let sub = argument(1)
        func arity(_ wanted: Int, _ name: StaticString) -> Bool {
            guard count == wanted else {
                reply.error("ERR wrong number of arguments for 'client|")
                reply.appendToError(name)
                reply.appendToError("' command")
                return false
            }
            return true
        }
        if equalsIgnoringCase(sub, "id") {
            if arity(2, "id") { reply.integer(Int(client.number)) }
        } else if equalsIgnoringCase(sub, "getname") {
            if arity(2, "getname") { client.name.isEmpty ? reply.nullBulk() : reply.bulk(client.name) }
        } else if equalsIgnoringCase(sub, "setname") {
            guard arity(3, "setname"), let name = clientName(argument(2), &reply) else { return }
            client.name = name
            reply.simple("OK")
        } else if equalsIgnoringCase(sub, "info") {
            if arity(2, "info") { reply.verbatim(describe(client, ClientAddresses.of([client])[0]) + [10]) }
        } else if equalsIgnoringCase(sub, "list") {
            let clients = Server.connections.clients.compactMap { $0 }
            var text: [UInt8] = []
            for (other, addresses) in zip(clients, ClientAddresses.of(clients)) { text += describe(other, addresses) + [10] }
            reply.verbatim(text)
        } else if equalsIgnoringCase(sub, "reply") {
            guard arity(3, "reply") else { return }
            let mode = argument(2)
            if equalsIgnoringCase(mode, "on") {
                client.replies = .on
                reply.simple("OK")
            } else if equalsIgnoringCase(mode, "off") {
                client.replies = .off
            } else if equalsIgnoringCase(mode, "skip") {
                client.replies = .skipNext
            } else {
                reply.error("ERR syntax error")
            }
        } else {
            reply.error("ERR unknown subcommand '")
            reply.appendToError(Array(sub.prefix(128)))
            reply.appendToError("'. Try CLIENT HELP.")
        }
    }

    /// `id=4 addr=127.0.0.1:41234 laddr=127.0.0.1:6379 name=worker age=12 idle=0 flags=N db=0
    /// multi=-1 qbuf=0 omem=0 resp=2`: the fields of Redis's CLIENT LIST that resp knows, with
    /// the addresses net gave (`addresses`).
    private static func describe(_ client: Client, _ addresses: (peer: [UInt8], local: [UInt8])) -> [UInt8] {
        let now = Clock.milliseconds
        var flags: [UInt8] = []
        if client.transaction != nil { flags.append(UInt8(ascii: "x")) }
        if client.held != nil { flags.append(UInt8(ascii: "b")) }
        if flags.isEmpty { flags.append(UInt8(ascii: "N")) }
        var text = Array("id=\(client.number) addr=".utf8) + addresses.peer + Array(" laddr=".utf8) + addresses.local
        text += Array(" name=".utf8) + client.name
        text += Array(" age=\((now &- client.connectedAt) / 1000) idle=\((now &- client.lastCommandAt) / 1000) flags=".utf8)
        text += flags
        text += Array(" db=0 multi=\(client.transaction.map { $0.queued.count } ?? -1) qbuf=\(client.input.pending)".utf8)
        text += Array(" omem=\(client.output.pending) resp=\(client.protocolVersion.number)".utf8)
        return text
    }

    /// HELLO [protover [AUTH username password] [SETNAME name]]: switches the connection to
    /// RESP2 or RESP3 and answers Redis's map of the server (in the protocol chosen).
    private static func hello(
        _ client: Client, _ argument: (Int) -> UnsafeBufferPointer<UInt8>, count: Int, _ reply: inout Reply
    ) {
        var version = client.protocolVersion
        if count >= 2 {
            let number = argument(1)
            guard !number.isEmpty, number.count <= 18, number.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                return reply.error("ERR Protocol version is not an integer or out of range")
            }
            guard number.count == 1 && (number[0] == UInt8(ascii: "2") || number[0] == UInt8(ascii: "3")) else {
                return reply.error("NOPROTO unsupported protocol version")
            }
            version = number[0] == UInt8(ascii: "2") ? .resp2 : .resp3
        }
        var index = 2
        var newName: [UInt8]? = nil
        while index < count {
            if equalsIgnoringCase(argument(index), "auth") && index + 2 < count {
                return reply.error("WRONGPASS invalid username-password pair or user is disabled.")
            } else if equalsIgnoringCase(argument(index), "setname") && index + 1 < count {
                guard let name = clientName(argument(index + 1), &reply) else { return }
                newName = name
                index += 2
            } else {
                reply.error("ERR Syntax error in HELLO option '")
                reply.appendToError(Array(argument(index).prefix(128)))
                reply.appendToError("'")
                return
            }
        }
        if let newName { client.name = newName }
        client.protocolVersion = version
        reply = Reply(version)
        reply.map(7)
        for (key, value) in [("server", "redis"), ("version", "7.0.0"), ("proto", ""), ("id", ""), ("mode", "standalone"), ("role", "master"), ("modules", "")] {
            reply.bulk(Array(key.utf8))
            switch key {
            case "proto": reply.integer(version.number)
            case "id": reply.integer(Int(client.number))
            case "modules": reply.array(0)
            default: reply.bulk(Array(value.utf8))
            }
        }
    }

    /// A name CLIENT SETNAME or HELLO SETNAME may give: printable ASCII without spaces, as
    /// Redis asks, and at most `maximumName` bytes; nil with the error replied.
    private static func clientName(_ name: UnsafeBufferPointer<UInt8>, _ reply: inout Reply) -> [UInt8]? {
        guard name.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            reply.error("ERR Client names cannot contain spaces, newlines or special characters.")
            return nil
        }
        guard name.count <= maximumName else {
            reply.error(nameTooLong)
            return nil
        }
        return Array(name)
    }

    /// RESET: the connection as new: out of MULTI, no WATCH, no name, replies on, RESP2.
    private static func reset(_ client: Client, _ entries: inout [BatchEntry]) {
        if let transaction = client.transaction {
            transaction.free()
            client.transaction = nil
        }
        if client.watching {
            Transactions.forgotten.append(client.id)
            client.watching = false
        }
        client.name = []
        client.replies = .on
        client.protocolVersion = .resp2
    }

    /// A reply in the connection's protocol, built here.
    struct Reply {
        private(set) var bytes: [UInt8] = []
        let version: ProtocolVersion

        init(_ version: ProtocolVersion) { self.version = version }

        mutating func simple(_ text: StaticString) { bytes += [UInt8(ascii: "+")] + text.bytes + [13, 10] }
        mutating func error(_ text: StaticString) { bytes += [UInt8(ascii: "-")] + text.bytes + [13, 10] }
        /// Adds to the error just written (before its CRLF).
        mutating func appendToError(_ text: StaticString) { appendToError(text.bytes) }
        mutating func appendToError(_ more: [UInt8]) {
            bytes.removeLast(2)
            bytes += more.map { $0 == 13 || $0 == 10 ? 32 : $0 } + [13, 10]
        }
        mutating func integer(_ value: Int) { bytes += Array(":\(value)\r\n".utf8) }
        mutating func bulk(_ value: [UInt8]) { bytes += Array("$\(value.count)\r\n".utf8) + value + [13, 10] }
        mutating func nullBulk() { bytes += version.nullBulk.bytes }
        mutating func array(_ count: Int) { bytes += Array("*\(count)\r\n".utf8) }
        /// `count` key-value pairs: a map in RESP3, a flat array in RESP2.
        mutating func map(_ count: Int) { bytes += Array((version == .resp3 ? "%\(count)\r\n" : "*\(2 * count)\r\n").utf8) }
        /// Text for a person: verbatim in RESP3, a bulk string in RESP2.
        mutating func verbatim(_ text: [UInt8]) {
            guard version == .resp3 else { return bulk(text) }
            bytes += Array("=\(text.count + 4)\r\ntxt:".utf8) + text + [13, 10]
        }
    }
}

extension StaticString {
    fileprivate var bytes: [UInt8] { Array(UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount)) }
}
