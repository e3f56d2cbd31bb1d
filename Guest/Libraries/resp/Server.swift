import FlexOS

/// One client connection: what it sent and has not been answered yet, and what it is owed.
final class Client {
    let id: UInt64
    var input: SharedBuffer
    var output: SharedBuffer
    /// Bytes at the start of the input that this turn's batch covers.
    var parsed = 0
    /// Close once the output is sent (QUIT, a protocol error).
    var closing = false
    /// The peer closed its side: close once what it sent is answered.
    var peerGone = false
    /// The network library no longer knows the connection.
    var dead = false
    /// The last turn left complete commands unparsed (its batch or this output was full).
    var stalled = false
    /// Poll said bytes (or the peer's close) wait to be received.
    var readable = false
    /// MULTI was sent and neither EXEC nor DISCARD yet: its commands are queued here.
    var transaction: Transaction?
    /// The store holds keys it WATCHes (forgotten when the connection closes).
    var watching = false
    /// Held by a blocking command (Blocking.swift): nothing more is read from it meanwhile.
    var held: Blocking.Held?
    /// Redis's number of the connection (CLIENT ID), its name (CLIENT SETNAME), when it came
    /// and last sent a command (Clock.milliseconds), whether it wants replies (CLIENT REPLY)
    /// and in which protocol (HELLO).
    let number: UInt64
    var name: [UInt8] = []
    let connectedAt = Clock.milliseconds
    var lastCommandAt = Clock.milliseconds
    var replies = ReplyMode.on
    /// RESP2, or RESP3 after HELLO 3.
    var protocolVersion = ProtocolVersion.resp2
    /// Where its output ended when its muted replies began (distribute).
    var muteMark = 0

    enum ReplyMode { case on, off, skipNext }

    /// What each buffer starts with, and shrinks back to when idle: ten thousand idle
    /// clients take 20 MiB of the shared heap, not 320.
    static let bufferSize = 1 << 10

    init?(id: UInt64) {
        guard let input = SharedBuffer(capacity: Client.bufferSize) else { return nil }
        guard let output = SharedBuffer(capacity: Client.bufferSize) else { input.free(); return nil }
        self.id = id
        self.input = input
        self.output = output
        number = ConnectionCommands.nextNumber
        ConnectionCommands.nextNumber += 1
    }

    var finished: Bool { dead || input.failed || output.failed || (closing || peerGone) && output.pending == 0 }

    /// The shared heap its buffers take.
    var bufferBytes: Int {
        input.capacity + output.capacity + (transaction?.bytes ?? 0)
            + (held.map { $0.command.arguments.reduce(0) { $0 + $1.1 } } ?? 0)
    }

    /// Drops what it sent and is owed and gives the buffers' memory back: it is closed next.
    func evict() {
        input.empty(keeping: Client.bufferSize)
        output.empty(keeping: Client.bufferSize)
        transaction?.free()
        parsed = 0
        closing = true
    }

    func release() {
        input.free()
        output.free()
        transaction?.free()
        transaction = nil
        if watching { Transactions.forgotten.append(id) }
        Blocking.release(self)
    }
}

/// What the batch holds for a client, in the order its replies are due.
enum BatchEntry {
    /// A command in the frame.
    case command(Client)
    /// QUIT: answered here, then the connection closes.
    case quit(Client)
    case protocolError(Client, StaticString, got: UInt8? = nil)
    /// A command answered here with this reply, without the application.
    case refused(Client, StaticString)
    /// resp's own command to the application (forgetting a closed client's WATCH): its
    /// reply goes to no one.
    case `internal`
    /// A blocking command (`fresh`: its copy, the first time; nil when it is tried again):
    /// a block record holds the client (Blocking.swift).
    case blocking(Client, Transaction.Queued?)
    /// A reply resp made itself (ConnectionCommands.swift).
    case text(Client, [UInt8])
    /// The replies of the client's entries between these two are dropped when `discard`
    /// (CLIENT REPLY OFF and SKIP).
    case mute(Client)
    case unmute(Client, discard: Bool)
}

/// The event loop: one thread serves every connection, as Redis does. Each turn it waits
/// for the network, receives for every ready client in one call, parses every complete
/// command into one batch, hands the batch to the application in one call, formats the
/// replies and sends them in one call: three crossings of each compartment boundary per
/// turn, however many clients and commands the turn serves.
enum Server {
    static let readable: UInt64 = 1 << 48
    /// A client may have at most this much unparsed input (one command of 16 MiB arguments).
    static let maximumInput = 2 * Parser.maximumBulkLength + Parser.maximumInlineLength
    /// While this much output waits for a client, its further commands wait.
    static let outputHighWater = 4 << 20
    static let eventCapacity = 256
    static let batchLimit = 1024
    /// Every connection (CLIENT LIST reads them).
    nonisolated(unsafe) static var connections = Connections()

    /// Receives for every client in `clients` that poll said is readable, in one call. A
    /// client whose input must grow past what clients may take of the shared heap makes
    /// room first: the clients holding the most are closed (perhaps this one).
    static func receive(_ clients: [Client], requests: UnsafeMutablePointer<UInt64>, connections: inout Connections) {
        let wanting = clients.filter { $0.readable && !$0.closing && $0.parsed == 0 && $0.output.pending < outputHighWater }
        for client in wanting where !client.closing { connections.makeRoom(client.input.growth(for: Client.bufferSize)) }
        var asked: [Client] = []
        for client in wanting where !client.closing {
            client.readable = false
            guard asked.count < eventCapacity, client.input.reserve(Client.bufferSize) else { continue }
            request(requests + 4 * asked.count, client.id, client.input.spare, client.input.spareCount)
            asked.append(client)
        }
        guard !asked.isEmpty else { return }
        _ = net.receive(requests, asked.count)
        for (index, client) in asked.enumerated() {
            let count = Int(Int64(bitPattern: requests[4 * index + 3]))
            if count > 0 {
                client.input.commit(count)
                if client.input.pending > maximumInput { protocolError(client, "too big query") }
            } else if count == 0 {
                client.peerGone = true
            } else if count == -2 {
                client.dead = true
            }
        }
    }

    /// Sends what every client in `clients` is owed, in one call.
    static func send(_ clients: [Client], requests: UnsafeMutablePointer<UInt64>) {
        var asked: [Client] = []
        for client in clients where client.output.pending > 0 && !client.dead && asked.count < eventCapacity {
            request(requests + 4 * asked.count, client.id, UnsafeMutablePointer(mutating: client.output.pendingBytes), client.output.pending)
            asked.append(client)
        }
        guard !asked.isEmpty else { return }
        _ = net.send(requests, asked.count)
        for (index, client) in asked.enumerated() {
            let sent = Int(Int64(bitPattern: requests[4 * index + 3]))
            if sent == -2 { client.dead = true } else if sent > 0 { client.output.consumed(sent) }
        }
    }

    private static func request(_ words: UnsafeMutablePointer<UInt64>, _ id: UInt64, _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int) {
        words[0] = id
        words[1] = UInt64(UInt(bitPattern: buffer))
        words[2] = UInt64(length)
        words[3] = 0
    }

    /// Parses the complete commands `client` sent into the batch. Returns true (and marks
    /// the client stalled) when it stopped with commands left: the batch or its output is full.
    static func collect(_ client: Client, frame: inout CommandFrame, entries: inout [BatchEntry], arguments: inout [(Int, Int)]) -> Bool {
        // A held client's further commands wait until its blocking command is answered.
        if client.held != nil {
            client.stalled = false
            return false
        }
        client.stalled = true
        defer { client.stalled = client.stalled && !client.closing }
        while !client.closing && client.input.pending > client.parsed {
            if client.output.pending >= outputHighWater || entries.count >= batchLimit { return true }
            let rest = UnsafeBufferPointer(rebasing: client.input.pendingBuffer[client.parsed...])
            switch Parser.parse(rest, into: &arguments) {
            case .incomplete:
                // Room grows with what arrives, never with what a header announces: a header
                // alone must not take the shared heap from every other client.
                client.stalled = false
                return false
            case .skip(let consumed):
                client.parsed += consumed
            case .error(let message):
                entries.append(.protocolError(client, message))
                client.closing = true
                return false
            case .unexpected(let expected, let byte):
                entries.append(.protocolError(client, expected, got: byte))
                client.closing = true
                return false
            case .command(let consumed):
                let base = client.input.pendingBytes + client.parsed
                client.lastCommandAt = Clock.milliseconds
                let silent = client.replies != .on
                if silent { entries.append(.mute(client)) }
                defer {
                    if silent {
                        // CLIENT REPLY ON itself is answered; SKIP mutes one command.
                        entries.append(.unmute(client, discard: client.replies != .on || !turnedOn(arguments, base)))
                        if client.replies == .skipNext { client.replies = .on }
                    }
                }
                if arguments.count == 1 && equalsIgnoringCase(UnsafeBufferPointer(start: base + arguments[0].0, count: arguments[0].1), "quit") {
                    entries.append(.quit(client))
                    client.closing = true
                } else if ConnectionCommands.collect(client, arguments, base: base, entries: &entries) {
                    // answered here
                } else if case let outcome = Transactions.collect(client, arguments: arguments, base: base, frame: &frame, entries: &entries),
                          outcome != .notHandled {
                    if outcome == .noRoom { return true }  // the next turn's batch has room for it
                } else if Blocking.isBlocking(UnsafeBufferPointer(start: base + arguments[0].0, count: arguments[0].1)) {
                    guard let copy = Transaction.copy(arguments, base: base) else {
                        if frame.count > 0 { return true }
                        entries.append(.refused(client, "-OOM the command does not fit the shared heap between the parser and the store\r\n"))
                        client.parsed += consumed
                        continue
                    }
                    guard frame.add(copy.arguments.map { (UnsafePointer(copy.bytes + $0.0), $0.1) }, isInternal: false) else {
                        SharedMemory.deallocate(copy.bytes)
                        if frame.count > 0 { return true }
                        entries.append(.refused(client, "-OOM the command does not fit the shared heap between the parser and the store\r\n"))
                        client.parsed += consumed
                        continue
                    }
                    entries.append(.blocking(client, copy))
                    client.parsed += consumed
                    // It may be held: nothing more of it is read this turn (Blocking.answer
                    // has the rest parsed next turn when it is not).
                    client.stalled = false
                    return false
                } else if frame.add(arguments, base: base) {
                    entries.append(.command(client))
                } else if frame.count > 0 {
                    return true  // the next turn's batch has room for it
                } else {
                    // Not even alone does it fit the shared heap: refused, not retried for ever.
                    entries.append(.refused(client, "-OOM the command does not fit the shared heap between the parser and the store\r\n"))
                }
                client.parsed += consumed
            }
        }
        client.stalled = false
        return false
    }

    /// Formats each entry's reply into its client's output, in order.
    static func distribute(_ entries: [BatchEntry], replies: UnsafeBufferPointer<UInt8>?) {
        var cursor = replies.map { ReplyCursor(replies: $0) }
        for entry in entries {
            switch entry {
            case .command(let client):
                guard let records = cursor?.next(), ReplyFormatter.format(records, for: client.protocolVersion, into: &client.output) else {
                    client.output.append("-ERR the application's reply was malformed\r\n")
                    continue
                }
            case .quit(let client):
                client.output.append("+OK\r\n")
            case .protocolError(let client, let message, let byte):
                protocolError(client, message, got: byte)
            case .refused(let client, let reply):
                client.output.append(reply)
            case .internal:
                _ = cursor?.next()
            case .text(let client, let bytes):
                bytes.withUnsafeBufferPointer { client.output.append($0) }
            case .mute(let client):
                client.muteMark = client.output.pending
            case .unmute(let client, let discard):
                if discard { client.output.dropLast(client.output.pending - client.muteMark) }
            case .blocking(let client, let fresh):
                guard let records = cursor?.next(), Blocking.answer(client, fresh: fresh, records) else {
                    client.output.append("-ERR the application's reply was malformed\r\n")
                    continue
                }
            }
        }
    }

    /// Answers a request that breaks the protocol and closes the connection; `got`: the byte
    /// that came where `message` (then what was expected) was due.
    static func protocolError(_ client: Client, _ message: StaticString, got byte: UInt8? = nil) {
        client.output.append("-ERR Protocol error: ")
        if let byte {
            client.output.append("expected ")
            client.output.append(message)
            client.output.append(", got '")
            // A byte that would end the error line is a space, as Redis sanitises its errors.
            client.output.append(byte == 13 || byte == 10 ? UInt8(ascii: " ") : byte)
            client.output.append("'")
        } else {
            client.output.append(message)
        }
        client.output.appendCRLF()
        client.input.discard()
        client.parsed = 0
        client.closing = true
    }

}

/// Whether the command at `arguments` from `base` is CLIENT REPLY ON.
func turnedOn(_ arguments: [(Int, Int)], _ base: UnsafePointer<UInt8>) -> Bool {
    func argument(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + arguments[index].0, count: arguments[index].1)
    }
    return arguments.count == 3 && equalsIgnoringCase(argument(0), "client") && equalsIgnoringCase(argument(1), "reply")
        && equalsIgnoringCase(argument(2), "on")
}

func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
    guard bytes.count == word.utf8CodeUnitCount else { return false }
    for index in 0..<bytes.count where bytes[index] | 0x20 != word.utf8Start[index] | 0x20 { return false }
    return true
}

/// The connections and what one turn of the loop works on.
struct Connections {
    var clients = [Client?](repeating: nil, count: 1 << 16)
    /// Clients with complete commands left over from the last turn.
    var backlog: [Client] = []
    /// Clients closed to make room, to finish at the end of the turn.
    var evicted: [Client] = []

    /// What the clients' buffers together may take of the shared heap (Redis's
    /// maxmemory-clients): past it the client holding the most is closed, so that a few
    /// clients sending large requests slowly cannot take the heap from every other. The
    /// rest is the batch frame's and the network's.
    static var clientMemoryLimit: UInt { SharedMemory.heapCapacity / 4 * 3 }
    /// Only a client holding more than this is closed to make room: closing small ones
    /// would not help.
    static let evictableBytes = 64 << 10

    /// Closes the clients holding the most buffer memory until `more` bytes fit under the
    /// limit, or no large client is left.
    mutating func makeRoom(_ more: Int) {
        while SharedMemory.heapBytesInUse &+ UInt(max(more, 0)) > Connections.clientMemoryLimit {
            var largest: Client?
            for case let client? in clients where client.bufferBytes > max(largest?.bufferBytes ?? 0, Connections.evictableBytes) && !client.closing {
                largest = client
            }
            guard let largest else { return }
            largest.evict()
            evicted.append(largest)
        }
    }

    /// The client of event word `event`, made on first sight; nil when none can be made.
    mutating func client(for event: UInt64) -> Client? {
        let id = event & 0xFFFF_FFFF_FFFF, slot = Int(id & 0xFFFF)
        if let stale = clients[slot], stale.id != id { stale.release(); clients[slot] = nil }
        if let client = clients[slot] { return client }
        guard let client = Client(id: id) else { net.close(id); return nil }
        clients[slot] = client
        return client
    }

    mutating func finish(_ client: Client) {
        net.close(client.id)
        client.release()
        clients[Int(client.id & 0xFFFF)] = nil
    }
}

/// Serves clients for ever, calling `handler` (an export of the application) once per
/// turn of the loop with the address of a batch of commands (CommandFrame.swift).
@_cdecl("resp_serve")
public func serve(_ handler: FlexOSExport) -> Int32 {
    guard var frame = CommandFrame(), let events = SharedMemory.allocate(UInt64.self, count: Server.eventCapacity),
          let requests = SharedMemory.allocate(UInt64.self, count: 4 * Server.eventCapacity), Transactions.prepare() else {
        panic("the shared heap is too small for the protocol's buffers")
    }
    var arguments: [(Int, Int)] = []
    var entries: [BatchEntry] = []
    while true {
        // Wait for the network unless commands are left over from the last turn or a held
        // client's time is up (or its command is due to be tried again).
        let count = net.poll(events, Server.eventCapacity, Server.connections.backlog.isEmpty ? Blocking.pollTimeout : -1)
        guard count >= 0 else { panic("the network library refused the event buffer") }
        var turn = Server.connections.backlog
        Server.connections.backlog = []
        for index in 0..<count {
            guard let client = Server.connections.client(for: events[index]) else { continue }
            if events[index] & Server.readable != 0 { client.readable = true }
            if !turn.contains(where: { $0 === client }) { turn.append(client) }
        }
        Server.receive(turn, requests: requests, connections: &Server.connections)
        frame.reset()
        entries.removeAll(keepingCapacity: true)
        Transactions.forgetClosedClients(frame: &frame, entries: &entries)
        for client in Blocking.retry(frame: &frame, entries: &entries) where !turn.contains(where: { $0 === client }) {
            turn.append(client)
        }
        let retries = frame.count
        for client in turn { _ = Server.collect(client, frame: &frame, entries: &entries, arguments: &arguments) }
        // Other commands ran: what a held client waits for may be there now.
        if frame.count > retries { Blocking.tryAgain = true }
        if frame.count > 0 { handler.call(UInt64(UInt(bitPattern: frame.words))) }
        Server.distribute(entries, replies: frame.count > 0 ? frame.replies : nil)
        Transactions.endTurn()
        Server.connections.makeRoom(0)
        for client in turn {
            client.input.consumed(client.parsed)
            client.parsed = 0
        }
        Server.send(turn, requests: requests)
        frame.shrinkIfLarge()
        for client in turn {
            client.input.shrinkIfIdle(to: Client.bufferSize)
            client.output.shrinkIfIdle(to: Client.bufferSize)
            if client.finished {
                Server.connections.finish(client)
            } else if client.stalled && client.output.pending < Server.outputHighWater {
                // More commands wait and nothing else will announce them: next turn, at once.
                // (A client whose replies back up is announced writable when they leave.)
                Server.connections.backlog.append(client)
            }
        }
        for client in Server.connections.evicted where Server.connections.clients[Int(client.id & 0xFFFF)] === client { Server.connections.finish(client) }
        Server.connections.evicted.removeAll()
        // Clients a blocking command held have their waiting input parsed next turn.
        for client in Blocking.released where !client.finished && !Server.connections.backlog.contains(where: { $0 === client }) {
            Server.connections.backlog.append(client)
        }
        Blocking.released.removeAll()
    }
}
