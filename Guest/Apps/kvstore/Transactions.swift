import FlexOS

/// MULTI, EXEC and WATCH, the store's side: resp queues a client's commands (its
/// Transactions.swift) and hands over its own internal commands, which no client can send:
///   `queued COMMAND ARGS...`  answers QUEUED, or the error EXEC would meet (unknown, arity);
///   `watch ID KEY...`         client ID (8 bytes) watches the keys;
///   `unwatch ID`              it watches none any more;
///   `exec ID N`               EXEC of its N commands, which follow in the batch: EXECABORT
///                             when one is refused (bit 32 of N: resp refused one), a null
///                             array when a watched key changed, else the array of their replies.
/// A watched key changes when a command that may write changes it (KeyTable's in-place
/// access, FLUSHALL) and succeeds: reads, even one that drops an expired key, and refused
/// writes do not. (A write that succeeds without changing anything, SADD of a member already
/// there, still counts, where Redis does not count it.)
enum Transactions {
    /// The clients watching each key, and the keys each client watches.
    nonisolated(unsafe) static var watchers: [[UInt8]: [UInt64]] = [:]
    nonisolated(unsafe) static var watched: [UInt64: [[UInt8]]] = [:]
    /// Clients a key of whose changed since they watched it: their EXEC runs nothing.
    nonisolated(unsafe) static var touched: Set<UInt64> = []
    /// Whether the commands running now are an EXEC's (blocking commands do not block there).
    nonisolated(unsafe) static var runningExec = false
    /// Whether the command running now may write (Commands.run sets it).
    nonisolated(unsafe) static var writing = false
    /// Watched keys the running command changed: they touch their watchers only if it
    /// succeeds (a command answered with an error, WRONGTYPE say, changed nothing).
    nonisolated(unsafe) static var changed: [[UInt8]] = []

    /// Runs internal command `c` of a batch with `following` commands after it; returns how
    /// many of those to skip (an EXEC that runs none of its commands) and how many to run as
    /// the EXEC's.
    static func run(_ c: Command, following: Int, batch: Batch, index: Int, _ r: inout Reply) -> (skip: Int, run: Int) {
        if c.isArgument(0, "queued") && c.count > 1 {
            if Commands.check(Command(c, droppingFirst: 1), &r) != nil { r.simple("QUEUED") }
            return (0, 0)
        }
        guard c.count >= 2, c[1].count == 8 else {
            r.error("ERR malformed internal command from the protocol library")
            return (0, 0)
        }
        let client = UnsafeRawPointer(c[1].baseAddress!).loadUnaligned(as: UInt64.self)
        if c.isArgument(0, "watch") {
            // Each watched key is copied twice (under the key and under the client): charged
            // as data, so that a client watching without end meets -OOM, not a full heap.
            var cost = 0
            for index in 2..<c.count { cost &+= 2 &* MemoryCost.key(c[index].count) }
            guard Keyspace.hasRoom(for: cost) else { return (refuse(Commands.outOfMemory, &r), 0) }
            for index in 2..<c.count { watch(c.bytes(index), by: client) }
            r.ok()
        } else if c.isArgument(0, "unwatch") {
            forget(client)
            r.ok()
        } else if c.isArgument(0, "exec") && c.count == 3 && c[2].count == 8 {
            let word = UnsafeRawPointer(c[2].baseAddress!).loadUnaligned(as: UInt64.self)
            let count = min(Int(word & 0xFFFF_FFFF), following)
            let skip = exec(client, count: count, refused: word & (1 << 32) != 0, batch: batch, first: index + 1, &r)
            return (skip, count - skip)
        } else {
            r.error("ERR malformed internal command from the protocol library")
        }
        return (0, 0)
    }

    private static func refuse(_ error: StaticString, _ r: inout Reply) -> Int {
        r.error(error)
        return 0
    }

    private static func exec(_ client: UInt64, count: Int, refused: Bool, batch: Batch, first: Int, _ r: inout Reply) -> Int {
        let changed = touched.contains(client)
        forget(client)
        // As Redis: a command refused while queueing aborts the transaction, before WATCH is asked.
        let valid = !refused && (first..<(first + count)).allSatisfy { Commands.isRunnable(Command(batch: batch, index: $0)) }
        if !valid {
            r.error("EXECABORT Transaction discarded because of previous errors.")
            return count
        }
        if changed {
            r.nullArray()
            return count
        }
        r.array(count)
        return 0
    }

    private static func watch(_ key: [UInt8], by client: UInt64) {
        if watched[client]?.contains(key) == true { return }
        watched[client, default: []].append(key)
        watchers[key, default: []].append(client)
    }

    private static func forget(_ client: UInt64) {
        touched.remove(client)
        guard let keys = watched.removeValue(forKey: client) else { return }
        for key in keys {
            watchers[key]?.removeAll { $0 == client }
            if watchers[key]?.isEmpty == true { watchers[key] = nil }
        }
    }

    /// Whether a change to `key` now must touch its watchers.
    static func mustTouch(_ key: [UInt8]) -> Bool { writing && !watchers.isEmpty && watchers[key] != nil }

    static func touch(_ key: [UInt8]) { changed.append(key) }

    /// FLUSHALL and FLUSHDB: every watched key that exists changes.
    static func touchAll(existing exists: ([UInt8]) -> Bool) {
        guard writing else { return }
        for key in watchers.keys where exists(key) { changed.append(key) }
    }

    /// The running command is done: the keys it changed touch their watchers if it succeeded.
    static func commit(changedKeys succeeded: Bool) {
        if succeeded { for key in changed { for client in watchers[key] ?? [] { touched.insert(client) } } }
        changed.removeAll()
        writing = false
    }
}
