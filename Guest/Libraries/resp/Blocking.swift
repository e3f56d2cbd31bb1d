import FlexOS

/// Clients held by a blocking command (BLPOP and its kin): the store answered it with a
/// block record (nothing to pop yet, BlockingCommands.swift in the store), so resp keeps a
/// copy of the command and reads nothing more from the client. The command is tried again
/// at the start of every turn that follows one that ran other commands (which may have
/// pushed what it waits for), the longest-waiting client first, until the store answers
/// it; when its timeout passes first, resp answers the null array. No thread, no timer:
/// the event loop's poll waits no longer than the nearest timeout.
enum Blocking {
    /// A held client's command and when its time is up (Clock.milliseconds; 0: never).
    struct Held {
        let command: Transaction.Queued
        let deadline: UInt64
    }

    /// The held clients, longest waiting first.
    nonisolated(unsafe) static var clients: [Client] = []
    /// Another command ran since the held ones were last tried.
    nonisolated(unsafe) static var tryAgain = false
    /// Clients answered this turn: their input, which waited, is parsed next turn.
    nonisolated(unsafe) static var released: [Client] = []

    /// Whether `name` is one of the commands the store may answer with a block record.
    static func isBlocking(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = name.first, first | 0x20 == UInt8(ascii: "b") else { return false }
        return equalsIgnoringCase(name, "blpop") || equalsIgnoringCase(name, "brpop")
            || equalsIgnoringCase(name, "blmove") || equalsIgnoringCase(name, "brpoplpush")
            || equalsIgnoringCase(name, "blmpop") || equalsIgnoringCase(name, "bzpopmin")
            || equalsIgnoringCase(name, "bzpopmax") || equalsIgnoringCase(name, "bzmpop")
    }

    /// Puts the held clients' commands in the batch (when something ran since they were
    /// last tried) and answers those whose time is up; returns the clients it touched,
    /// which join the turn (their replies are sent with it).
    static func retry(frame: inout CommandFrame, entries: inout [BatchEntry]) -> [Client] {
        let now = Clock.milliseconds
        var touched: [Client] = []
        for client in clients {
            guard let held = client.held else { continue }
            if held.deadline != 0 && now >= held.deadline {
                entries.append(.refused(client, client.protocolVersion.nullArray))
                release(client)
                touched.append(client)
            } else if tryAgain && entries.count < Server.batchLimit,
                frame.add(held.command.arguments.map { (UnsafePointer(held.command.bytes + $0.0), $0.1) }, isInternal: false)
            {
                entries.append(.blocking(client, nil))
                touched.append(client)
            }
        }
        tryAgain = false
        return touched
    }

    /// The store answered `client`'s blocking command (`fresh`: the copy made when it first
    /// came; nil for a retry) with `records`: holds the client when they are a block record,
    /// else formats them. False when the records are malformed.
    static func answer(_ client: Client, fresh: Transaction.Queued?, _ records: UnsafeBufferPointer<UInt8>) -> Bool {
        if records.count == 9, records[0] == UInt8(ascii: "B"), let base = records.baseAddress {
            let milliseconds = UInt64(clamping: UnsafeRawPointer(base + 1).loadUnaligned(as: Int64.self))
            if let fresh {
                client.held = Held(command: fresh, deadline: milliseconds == 0 ? 0 : Clock.milliseconds &+ milliseconds)
                clients.append(client)
            }
            return true
        }
        if let fresh {
            SharedMemory.deallocate(fresh.bytes)
            released.append(client)  // answered at once: what it sent next is parsed next turn
        }
        if client.held != nil { release(client) }
        return ReplyFormatter.format(records, for: client.protocolVersion, into: &client.output)
    }

    /// Lets `client` go: its command is answered (or its time was up) or it closed.
    static func release(_ client: Client) {
        guard let held = client.held else { return }
        SharedMemory.deallocate(held.command.bytes)
        client.held = nil
        clients.removeAll { $0 === client }
        released.append(client)
    }

    /// How long the event loop's poll may wait (net.poll's milliseconds: 0 without limit):
    /// no longer than the nearest timeout of a held client, and not at all when a retry is due.
    static var pollTimeout: Int {
        if tryAgain && !clients.isEmpty { return -1 }
        let now = Clock.milliseconds
        var nearest: UInt64 = 0
        for client in clients {
            guard let deadline = client.held?.deadline, deadline != 0 else { continue }
            nearest = nearest == 0 ? deadline : min(nearest, deadline)
        }
        if nearest == 0 { return 0 }
        return nearest <= now ? -1 : Int(min(nearest - now, 1 << 30))
    }
}
