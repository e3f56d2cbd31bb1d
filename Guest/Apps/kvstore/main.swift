import FlexOS

/// Serves Redis clients for ever: the protocol library runs the event loop and calls
/// `execute` back for every command.
@_cdecl("app_main")
public func appMain() -> Int32 {
    Server.startedAt = Clock.milliseconds
    print("kvstore: serving Redis clients (\(Keyspace.maximumMemory >> 20) MiB for data)")
    return resp.serve(Exports.execute)
}

/// Runs the batch of commands in `frame` (laid out as resp's CommandFrame.swift says) and
/// writes their replies into the frame's reply buffer. Called through a gate when resp
/// lives in another compartment: one crossing per batch, not per command.
@_cdecl("kvstore_execute")
public func execute(_ frame: UnsafeMutablePointer<UInt64>) -> Int {
    guard let batch = Batch(frame: frame) else { return -1 }
    var reply = Reply(frame: frame)
    var skipped = 0  // the commands of a transaction EXEC did not run: an empty reply each
    var transactional = 0  // the commands EXEC runs: blocking commands do not block there
    for index in batch.commands.indices {
        reply.begin()
        let command = Command(batch: batch, index: index)
        if skipped > 0 {
            skipped -= 1
        } else if command.isInternal {
            (skipped, transactional) = Transactions.run(
                command, following: batch.commands.count - index - 1, batch: batch, index: index, &reply)
        } else {
            Transactions.runningExec = transactional > 0
            if transactional > 0 { transactional -= 1 }
            Commands.run(command, &reply)
        }
        reply.end()
    }
    Transactions.runningExec = false
    reply.finish()
    return batch.commands.count
}
