import FlexOS

/// One client connection: what it sent and has not been parsed yet, and what it is owed.
final class Client {
    let id: UInt64
    var input: SharedBuffer
    var output: SharedBuffer
    /// Close once the output is sent (QUIT, a protocol error).
    var closing = false
    /// The peer closed its side: close once what it sent is answered.
    var peerGone = false
    /// The network library no longer knows the connection.
    var dead = false

    init?(id: UInt64) {
        guard let input = SharedBuffer(capacity: 16 << 10) else { return nil }
        guard let output = SharedBuffer(capacity: 16 << 10) else { input.free(); return nil }
        self.id = id
        self.input = input
        self.output = output
    }

    var finished: Bool { dead || input.failed || output.failed || (closing || peerGone) && output.pending == 0 }

    func release() {
        input.free()
        output.free()
    }
}

/// The event loop: one thread serves every connection, as Redis does. Each turn it waits
/// for the network, reads what came, runs every complete command (pipelining), and sends
/// the replies in one go.
enum Server {
    static let readable: UInt64 = 1 << 48
    /// A client may have at most this much unparsed input (one command of 16 MiB arguments).
    static let maximumInput = 2 * Parser.maximumBulkLength + Parser.maximumInlineLength
    /// While this much output waits for a client, its further commands wait.
    static let outputHighWater = 4 << 20
    static let eventCapacity = 256

    static func read(_ client: Client) {
        while client.output.pending < outputHighWater {
            guard client.input.reserve(16 << 10) else { return }
            let count = net.receive(client.id, client.input.spare, client.input.spareCount)
            if count > 0 {
                client.input.commit(count)
                if client.input.pending > maximumInput { return protocolError(client, "too big query") }
                continue
            }
            if count == 0 { client.peerGone = true }
            if count == -2 { client.dead = true }
            return
        }
    }

    /// Runs the complete commands `client` sent, while its output is below the high water.
    /// Returns true when it stopped at the high water with commands left to run.
    static func process(_ client: Client, frame: inout CommandFrame, handler: FlexOSExport, arguments: inout [(Int, Int)]) -> Bool {
        while !client.closing && client.input.pending > 0 {
            if client.output.pending >= outputHighWater { return true }
            switch Parser.parse(client.input.pendingBuffer, into: &arguments) {
            case .incomplete(let needed):
                if needed > client.input.capacity { _ = client.input.reserve(needed - client.input.pending) }
                return false
            case .skip(let consumed):
                client.input.consumed(consumed)
            case .error(let message):
                protocolError(client, message)
                return false
            case .command(let consumed):
                execute(client, frame: &frame, handler: handler, arguments: arguments)
                client.input.consumed(consumed)
            }
        }
        return false
    }

    private static func execute(_ client: Client, frame: inout CommandFrame, handler: FlexOSExport, arguments: [(Int, Int)]) {
        let base = client.input.pendingBytes
        if arguments.count == 1 && equalsIgnoringCase(UnsafeBufferPointer(start: base + arguments[0].0, count: arguments[0].1), "quit") {
            client.output.append("+OK\r\n")
            client.closing = true
            return
        }
        guard frame.reserve(arguments: arguments.count) else {
            client.output.append("-ERR the shared heap cannot hold this command's arguments\r\n")
            return
        }
        for (index, argument) in arguments.enumerated() { frame.set(argument: index, base + argument.0, count: argument.1) }
        frame.argumentCount = arguments.count
        frame.clearReply()
        handler.call(UInt64(UInt(bitPattern: frame.words)))
        guard let reply = frame.reply, ReplyFormatter.format(reply, into: &client.output) else {
            client.output.append("-ERR the application's reply was malformed\r\n")
            return
        }
    }

    static func protocolError(_ client: Client, _ message: StaticString) {
        client.output.append("-ERR Protocol error: ")
        client.output.append(message)
        client.output.appendCRLF()
        client.input.discard()
        client.closing = true
    }

    static func flush(_ client: Client) {
        while client.output.pending > 0 {
            let sent = net.send(client.id, client.output.pendingBytes, client.output.pending)
            if sent == -2 { client.dead = true; return }
            guard sent > 0 else { return }
            client.output.consumed(sent)
        }
    }
}

func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Bool {
    guard bytes.count == word.utf8CodeUnitCount else { return false }
    for index in 0..<bytes.count where bytes[index] | 0x20 != word.utf8Start[index] | 0x20 { return false }
    return true
}

/// Serves clients for ever, calling `handler` (an export of the application) once per
/// command with the address of a command frame (CommandFrame.swift).
@_cdecl("resp_serve")
public func serve(_ handler: FlexOSExport) -> Int32 {
    guard var frame = CommandFrame(), let events = SharedMemory.allocate(UInt64.self, count: Server.eventCapacity) else {
        panic("the shared heap is too small for the protocol's buffers")
    }
    var clients = [Client?](repeating: nil, count: 1 << 16)
    var arguments: [(Int, Int)] = []
    while true {
        let count = net.poll(events, Server.eventCapacity, 0)
        guard count >= 0 else { panic("the network library refused the event buffer") }
        for index in 0..<count {
            let id = events[index] & 0xFFFF_FFFF_FFFF, slot = Int(id & 0xFFFF)
            if let stale = clients[slot], stale.id != id { stale.release(); clients[slot] = nil }
            guard let client = clients[slot] ?? Client(id: id) else { net.close(id); continue }
            clients[slot] = client
            if events[index] & Server.readable != 0 { Server.read(client) }
            // Run what it sent; when the replies back up, send them and go on if they left.
            var blocked = false
            repeat {
                blocked = Server.process(client, frame: &frame, handler: handler, arguments: &arguments)
                Server.flush(client)
            } while blocked && client.output.pending == 0 && !client.dead
            if client.finished {
                net.close(id)
                client.release()
                clients[slot] = nil
            }
        }
    }
}
