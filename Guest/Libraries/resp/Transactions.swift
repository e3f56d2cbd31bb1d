import FlexOS

/// A client's MULTI: the commands it queued, copied out of its input buffer (which moves
/// on), until EXEC hands them to the store in one group or DISCARD drops them.
final class Transaction {
    struct Queued {
        /// The command's arguments, one after another, in the shared heap.
        let bytes: UnsafeMutablePointer<UInt8>
        /// (offset, length) of each argument in `bytes`.
        let arguments: [(Int, Int)]
    }

    var queued: [Queued] = []

    /// A copy of the command whose arguments are `arguments` (offset, length) from `base`, in
    /// the shared heap; nil when the heap cannot hold it.
    static func copy(_ arguments: [(Int, Int)], base: UnsafePointer<UInt8>) -> Queued? {
        let total = arguments.reduce(0) { $0 + $1.1 }
        guard let copy = SharedMemory.allocate(UInt8.self, count: max(total, 1)) else { return nil }
        var offset = 0, copied: [(Int, Int)] = []
        for (start, length) in arguments {
            (copy + offset).update(from: base + start, count: length)
            copied.append((offset, length))
            offset += length
        }
        return Queued(bytes: copy, arguments: copied)
    }
    /// A command was refused while queueing for its arity (EXEC, MULTI, WATCH, DISCARD with
    /// arguments): EXEC then aborts. Unknown commands and the store's commands' arities the
    /// store checks again at EXEC.
    var refused = false
    /// Shared heap its copies take.
    private(set) var bytes = 0

    /// Copies the command whose arguments are `arguments` (offset, length) from `base`;
    /// false when the shared heap cannot hold it.
    func queue(_ arguments: [(Int, Int)], base: UnsafePointer<UInt8>) -> Bool {
        guard let copy = Transaction.copy(arguments, base: base) else { return false }
        queued.append(copy)
        bytes += max(arguments.reduce(0) { $0 + $1.1 }, 1)
        return true
    }

    /// Drops the command queued last.
    func dropLast() {
        guard let last = queued.popLast() else { return }
        SharedMemory.deallocate(last.bytes)
        bytes -= max(last.arguments.reduce(0) { $0 + $1.1 }, 1)
    }

    func free() {
        for command in queued { SharedMemory.deallocate(command.bytes) }
        queued = []
        bytes = 0
    }
}

/// MULTI, EXEC, DISCARD, WATCH and UNWATCH, the protocol's side. The store sees writes, so
/// WATCH's keys and EXEC's decision are the store's: resp hands it internal commands
/// (CommandFrame: the argument count's top bit set, which no client can send):
///   `queued COMMAND ARGS...`  checks the command as EXEC will and answers QUEUED or the error;
///   `watch ID KEY...`         watches the keys for client ID (8 bytes, little-endian);
///   `unwatch ID`              forgets them (UNWATCH, DISCARD, a closed connection);
///   `exec ID N`               EXEC of client ID's N commands, which follow it in the frame:
///                             the store answers EXECABORT, a null array (a watched key
///                             changed) or an array of their replies. Bit 32 of N: resp
///                             refused a command while queueing.
/// All of a transaction's commands run in one call of the store, with no other client's
/// command among them: that is what makes them atomic.
enum Transactions {
    /// A word in the shared heap: an internal command's name.
    private typealias Word = (bytes: UnsafePointer<UInt8>, count: Int)

    /// The names of the internal commands, in the shared heap (made once).
    private struct Names {
        let queued: Word, watch: Word, unwatch: Word, exec: Word
    }

    nonisolated(unsafe) private static var names: Names?
    /// Shared-heap words this turn's internal commands point at, freed when the turn ends.
    nonisolated(unsafe) private static var scratch: [UnsafeMutablePointer<UInt64>] = []
    /// Transactions EXEC or DISCARD ended this turn: the frame may still point into them.
    nonisolated(unsafe) private static var retired: [Transaction] = []
    /// Clients that watched keys and are gone: the store forgets them next turn.
    nonisolated(unsafe) static var forgotten: [UInt64] = []

    /// What `collect` did with a command.
    enum Outcome {
        /// None of these words, and no transaction queues it: the caller goes on.
        case notHandled
        /// Answered, queued or added to the batch.
        case handled
        /// No room in this turn's batch: the command waits for the next.
        case noRoom
    }

    /// Takes care of `client`'s command (arguments as (offset, length) from `base`) if it is
    /// one of the transaction words or `client` is in MULTI.
    static func collect(
        _ client: Client, arguments: [(Int, Int)], base: UnsafePointer<UInt8>, frame: inout CommandFrame,
        entries: inout [BatchEntry]
    ) -> Outcome {
        let name = UnsafeBufferPointer(start: base + arguments[0].0, count: arguments[0].1)
        let inMulti = client.transaction != nil
        if equalsIgnoringCase(name, "multi") {
            guard arguments.count == 1 else { return arityError(client, "-ERR wrong number of arguments for 'multi' command\r\n", &entries) }
            if inMulti {
                entries.append(.refused(client, "-ERR MULTI calls can not be nested\r\n"))
            } else {
                client.transaction = Transaction()
                entries.append(.refused(client, "+OK\r\n"))
            }
            return .handled
        }
        if equalsIgnoringCase(name, "exec") {
            guard arguments.count == 1 else {
                // As Redis: EXEC refused for its arity discards the transaction and the watched keys, MULTI or not.
                guard add(client, names!.unwatch, frame: &frame) else { return noRoom(client, frame, &entries) }
                entries.append(.internal)
                entries.append(.refused(client, "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"))
                client.watching = false
                if let transaction = client.transaction { end(client, transaction) }
                return .handled
            }
            guard let transaction = client.transaction else {
                entries.append(.refused(client, "-ERR EXEC without MULTI\r\n"))
                return .handled
            }
            return exec(client, transaction, frame: &frame, entries: &entries)
        }
        if equalsIgnoringCase(name, "discard") {
            guard arguments.count == 1 else { return arityError(client, "-ERR wrong number of arguments for 'discard' command\r\n", &entries) }
            guard let transaction = client.transaction else {
                entries.append(.refused(client, "-ERR DISCARD without MULTI\r\n"))
                return .handled
            }
            // The store's answer to the unwatch is DISCARD's +OK.
            guard add(client, names!.unwatch, frame: &frame) else { return noRoom(client, frame, &entries) }
            entries.append(.command(client))
            end(client, transaction)
            return .handled
        }
        if equalsIgnoringCase(name, "watch") {
            guard arguments.count > 1 else { return arityError(client, "-ERR wrong number of arguments for 'watch' command\r\n", &entries) }
            if inMulti {
                entries.append(.refused(client, "-ERR WATCH inside MULTI is not allowed\r\n"))
                return .handled
            }
            guard add(client, names!.watch, keys: arguments.dropFirst().map { (base + $0.0, $0.1) }, frame: &frame)
            else { return noRoom(client, frame, &entries) }
            client.watching = true
            entries.append(.command(client))
            return .handled
        }
        if equalsIgnoringCase(name, "unwatch") && !inMulti {
            guard arguments.count == 1 else { return arityError(client, "-ERR wrong number of arguments for 'unwatch' command\r\n", &entries) }
            guard add(client, names!.unwatch, frame: &frame) else { return noRoom(client, frame, &entries) }
            client.watching = false
            entries.append(.command(client))
            return .handled
        }
        guard let transaction = client.transaction else { return .notHandled }
        // Queued: checked by the store now (QUEUED or its error), run at EXEC.
        let pointers = [names!.queued] + arguments.map { (base + $0.0, $0.1) }
        guard transaction.queue(arguments, base: base) else {
            entries.append(.refused(client, "-OOM the command does not fit the shared heap between the parser and the store\r\n"))
            transaction.refused = true
            return .handled
        }
        guard frame.add(pointers, isInternal: true) else {
            transaction.dropLast()
            return noRoom(client, frame, &entries)
        }
        entries.append(.command(client))
        return .handled
    }

    /// EXEC: the header, then every queued command, added to the batch together or not at all.
    private static func exec(_ client: Client, _ transaction: Transaction, frame: inout CommandFrame, entries: inout [BatchEntry])
        -> Outcome
    {
        let count = transaction.queued.count
        if entries.count + count + 1 > Server.batchLimit && !entries.isEmpty { return .noRoom }
        let mark = frame.mark
        let flags = UInt64(count) | (transaction.refused ? 1 << 32 : 0)
        var added = add(client, names!.exec, word: flags, frame: &frame)
        for command in transaction.queued where added {
            added = frame.add(command.arguments.map { (UnsafePointer(command.bytes + $0.0), $0.1) }, isInternal: false)
        }
        guard added else {
            frame.rollBack(to: mark)
            if frame.count > 0 { return .noRoom }
            entries.append(.refused(client, "-OOM the transaction does not fit the shared heap between the parser and the store\r\n"))
            end(client, transaction)
            return .handled
        }
        // The header's reply is the array's (or EXECABORT, or the null array); each command's follows.
        for _ in 0...count { entries.append(.command(client)) }
        client.watching = false
        end(client, transaction)
        return .handled
    }

    /// An internal command of `client`: `name`, its id, then `word` (if any) or `keys`.
    private static func add(
        _ client: Client, _ name: Word, word: UInt64? = nil,
        keys: [(UnsafePointer<UInt8>, Int)] = [], frame: inout CommandFrame
    ) -> Bool {
        add(id: client.id, name, word: word, keys: keys, frame: &frame)
    }

    /// An internal command of the client numbered `id` (which may have gone).
    private static func add(
        id: UInt64, _ name: Word, word: UInt64? = nil, keys: [(UnsafePointer<UInt8>, Int)] = [],
        frame: inout CommandFrame
    ) -> Bool {
        guard let words = SharedMemory.allocate(UInt64.self, count: 2) else { return false }
        scratch.append(words)
        words[0] = id
        words[1] = word ?? 0
        let bytes = UnsafeRawPointer(words).assumingMemoryBound(to: UInt8.self)
        var arguments = [name, (bytes, 8)]
        if word != nil { arguments.append((bytes + 8, 8)) }
        return frame.add(arguments + keys, isInternal: true)
    }

    /// The store forgets what the clients in `forgotten` watched: their replies go nowhere.
    static func forgetClosedClients(frame: inout CommandFrame, entries: inout [BatchEntry]) {
        while let id = forgotten.last {
            guard add(id: id, names!.unwatch, frame: &frame) else { return }
            entries.append(.internal)
            forgotten.removeLast()
        }
    }

    /// The batch has no room for `client`'s command: it waits for the next turn's, unless
    /// even an empty batch had none (the shared heap is full), when it is refused.
    private static func noRoom(_ client: Client, _ frame: CommandFrame, _ entries: inout [BatchEntry]) -> Outcome {
        if frame.count > 0 { return .noRoom }
        client.transaction?.refused = true
        entries.append(.refused(client, "-OOM the command does not fit the shared heap between the parser and the store\r\n"))
        return .handled
    }

    private static func arityError(_ client: Client, _ reply: StaticString, _ entries: inout [BatchEntry]) -> Outcome {
        // In MULTI a refused command makes EXEC abort, as Redis's arity check does.
        client.transaction?.refused = true
        entries.append(.refused(client, reply))
        return .handled
    }

    private static func end(_ client: Client, _ transaction: Transaction) {
        retired.append(transaction)
        client.transaction = nil
    }

    /// Frees what this turn's internal commands and ended transactions held (after the
    /// store has run the batch and its replies are formatted).
    static func endTurn() {
        for words in scratch { SharedMemory.deallocate(words) }
        scratch.removeAll(keepingCapacity: true)
        for transaction in retired { transaction.free() }
        retired.removeAll(keepingCapacity: true)
    }

    /// Makes the internal commands' names (once, at start).
    static func prepare() -> Bool {
        func word(_ text: StaticString) -> Word? {
            guard let bytes = SharedMemory.allocate(UInt8.self, count: text.utf8CodeUnitCount) else { return nil }
            bytes.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
            return (UnsafePointer(bytes), text.utf8CodeUnitCount)
        }
        guard let queued = word("queued"), let watch = word("watch"), let unwatch = word("unwatch"), let exec = word("exec")
        else { return false }
        names = Names(queued: queued, watch: watch, unwatch: unwatch, exec: exec)
        return true
    }
}
