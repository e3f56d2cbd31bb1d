import FlexOS

/// Serves Redis clients for ever: the protocol library runs the event loop and calls
/// `execute` back for every command.
@_cdecl("app_main")
public func appMain() -> Int32 {
    print("kvstore: serving Redis clients (\(Keyspace.maximumMemory >> 20) MiB for data)")
    return resp.serve(Exports.execute)
}

/// Runs the command in `frame` (laid out as resp's CommandFrame.swift says) and writes
/// its reply records into the frame's reply buffer. Called through a gate when resp lives
/// in another compartment.
@_cdecl("kvstore_execute")
public func execute(_ frame: UnsafeMutablePointer<UInt64>) -> Int {
    guard let command = Command(frame: frame) else { return -1 }
    var reply = Reply(frame: frame)
    Commands.run(command, &reply)
    reply.finish()
    return 0
}
