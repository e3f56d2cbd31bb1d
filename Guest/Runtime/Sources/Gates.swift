import CFlexOSGuest

/// A function another library exported, as a value: what a callback is across gates.
public typealias FlexOSExport = flexos_export

extension FlexOSExport {
    /// Calls the export with up to six integer-sized arguments, through a gate when its
    /// library lives in another compartment.
    @discardableResult
    public func call(_ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0, _ a4: UInt64 = 0, _ a5: UInt64 = 0) -> UInt64 {
        Gates.call(export: UInt32(truncatingIfNeeded: index), a0, a1, a2, a3, a4, a5)
    }
}

/// The export table of the image set, generated per conformation: calls export `index`.
@_extern(c, "flexos_dispatch")
func dispatchExport(_ index: UInt32, _ a0: UInt64, _ a1: UInt64, _ a2: UInt64, _ a3: UInt64, _ a4: UInt64, _ a5: UInt64) -> UInt64

/// Which VM runs export `index` (generated per conformation); -1 if there is no such export.
@_extern(c, "flexos_export_machine")
func exportMachine(_ index: UInt32) -> Int32

/// Gates between compartments that live in different VMs (mechanism vmept): an RPC
/// through the gate block in shared memory (see flexos_abi.h).
///
/// A caller writes the export's index and arguments into the channel to the callee and
/// polls for the reply; while it waits it serves calls addressed to itself, which is how
/// callbacks work. Idle sides poll for as long as it has paid lately (AdaptiveSpin), then
/// sleep; whoever publishes something a sleeper waits for wakes it.
public enum Gates {
    /// How long a caller polls for its reply, and how long a serving side polls for calls:
    /// learned apart, since a callee's service time and the gaps between calls differ.
    nonisolated(unsafe) static var replyPolling = AdaptiveSpin()
    nonisolated(unsafe) static var callPolling = AdaptiveSpin()
    /// One outgoing call in this many is timed: reading the TSC twice costs as much as
    /// a third of a call.
    static let samplingInterval: UInt64 = 64

    /// The gate block, from the boot info.
    static var block: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(bootInfo.pointee.gate_block)) }
    /// Per caller: the sequence number of the last request this compartment took up.
    nonisolated(unsafe) static var taken: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// Calls export `index` wherever it lives.
    public static func call(export index: UInt32, _ a0: UInt64, _ a1: UInt64, _ a2: UInt64, _ a3: UInt64, _ a4: UInt64, _ a5: UInt64) -> UInt64 {
        let machine = Int(exportMachine(index))
        guard machine >= 0 else { panic("call through an unknown export (a corrupt callback?)") }
        if machine == Compartment.index { return dispatchExport(index, a0, a1, a2, a3, a4, a5) }
        return remoteCall(machine: machine, export: index, a0, a1, a2, a3, a4, a5)
    }

    /// The RPC: post the request, wake the callee if it sleeps, wait for the reply.
    public static func remoteCall(machine callee: Int, export index: UInt32, _ a0: UInt64, _ a1: UInt64, _ a2: UInt64, _ a3: UInt64, _ a4: UInt64, _ a5: UInt64) -> UInt64 {
        guard let block, callee < Compartment.count else { panic("gate call to a compartment this image set does not have") }
        let me = Compartment.index
        let state = statePointer(block, me)
        let sampled = state.pointee.calls_out % samplingInterval == 0
        let started = sampled ? flexos_cycles() : 0
        let channel = channelPointer(block, caller: me, callee: callee)
        channel.pointee.export_index = index
        channel.pointee.args = (a0, a1, a2, a3, a4, a5)
        let sequence = channel.pointee.request_sequence &+ 1
        flexos_store_release(&channel.pointee.request_sequence, sequence)
        wakeIfSleeping(callee)
        waitUntil(polling: &replyPolling) { flexos_load_acquire(&channel.pointee.reply_sequence) == sequence }
        if channel.pointee.reply_status != FLEXOS_GATE_OK {
            panic("a gate call was refused by the compartment it went to: it does not export what was asked (export index out of its table)")
        }
        let result = channel.pointee.result
        state.pointee.calls_out &+= 1
        if sampled { recordSample(state, cycles: flexos_cycles() &- started) }
        return result
    }

    /// Serves gate calls for ever: what a compartment without the application does.
    static func serveForever() -> Never {
        if let block { statePointer(block, Compartment.index).pointee.serving = 1 }
        waitUntil(polling: &callPolling) { false }
        panic("unreachable")
    }

    /// Polls `done`, serving incoming calls meanwhile; sleeps when idle for longer than
    /// `polling` says pays, and tells it how each idle period ended.
    static func waitUntil(polling: inout AdaptiveSpin, _ done: () -> Bool) {
        var idleSince = flexos_cycles(), slept = false
        while !done() {
            if serveOne() {
                polling.idleEnded(since: idleSince, slept: slept)
                (idleSince, slept) = (flexos_cycles(), false)
                continue
            }
            if !slept && polling.shouldPoll(since: idleSince) { flexos_cpu_relax(); continue }
            sleep(unless: done)
            slept = true
        }
        polling.idleEnded(since: idleSince, slept: slept)
    }

    /// Sleeps unless `done` or an incoming call shows up after this compartment said so.
    private static func sleep(unless done: () -> Bool) {
        guard let block else { return }
        let state = statePointer(block, Compartment.index)
        flexos_store32_release(&state.pointee.sleeping, 1)
        flexos_full_fence()
        if !done() && !hasIncoming(block) { Hypercalls.wait(timeout: 0) }
        flexos_store32_release(&state.pointee.sleeping, 0)
    }

    /// Serves one pending call addressed to this compartment; false if there is none.
    private static func serveOne() -> Bool {
        guard let block else { return false }
        let me = Compartment.index
        for caller in 0..<Compartment.count where caller != me {
            let channel = channelPointer(block, caller: caller, callee: me)
            let sequence = flexos_load_acquire(&channel.pointee.request_sequence)
            guard sequence != takenSequence(caller) else { continue }
            setTakenSequence(caller, sequence)
            // Read each field of the request once: the caller may still be writing it.
            let index = channel.pointee.export_index
            let args = channel.pointee.args
            if Int(exportMachine(index)) == me {
                statePointer(block, me).pointee.calls_in &+= 1
                channel.pointee.result = dispatchExport(index, args.0, args.1, args.2, args.3, args.4, args.5)
                channel.pointee.reply_status = FLEXOS_GATE_OK
            } else {
                // Not ours to serve: refused back to the caller, never a reason to stop here.
                channel.pointee.result = 0
                channel.pointee.reply_status = FLEXOS_GATE_REFUSED_EXPORT
            }
            flexos_store_release(&channel.pointee.reply_sequence, sequence)
            wakeIfSleeping(caller)
            return true
        }
        return false
    }

    private static func hasIncoming(_ block: UnsafeMutableRawPointer) -> Bool {
        let me = Compartment.index
        for caller in 0..<Compartment.count where caller != me {
            let channel = channelPointer(block, caller: caller, callee: me)
            if flexos_load_acquire(&channel.pointee.request_sequence) != takenSequence(caller) { return true }
        }
        return false
    }

    private static func wakeIfSleeping(_ index: Int) {
        guard let block else { return }
        flexos_full_fence()
        if flexos_load32_acquire(&statePointer(block, index).pointee.sleeping) != 0 {
            Hypercalls.wake(index)
        }
    }

    /// Updates this compartment's own counters in the gate block (a set of one VM has none).
    static func countOwn(_ update: (UnsafeMutablePointer<flexos_compartment_state>) -> Void) {
        if let block { update(statePointer(block, Compartment.index)) }
    }

    private static func recordSample(_ state: UnsafeMutablePointer<flexos_compartment_state>, cycles: UInt64) {
        state.pointee.calls_sampled &+= 1
        state.pointee.call_cycles_total &+= cycles
        if cycles > state.pointee.call_cycles_max { state.pointee.call_cycles_max = cycles }
    }

    /// The channel from `caller` to `callee`: on the page of that pair, which only the two map.
    private static func channelPointer(_ block: UnsafeMutableRawPointer, caller: Int, callee: Int) -> UnsafeMutablePointer<flexos_gate_channel> {
        (block + Int(flexos_gate_channel_offset(UInt32(caller), UInt32(callee)))).assumingMemoryBound(to: flexos_gate_channel.self)
    }

    /// Compartment `index`'s state: writable by it, read-only to the others.
    private static func statePointer(_ block: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutablePointer<flexos_compartment_state> {
        (block + Int(flexos_gate_state_offset(UInt32(index)))).assumingMemoryBound(to: flexos_compartment_state.self)
    }

    private static func takenSequence(_ caller: Int) -> UInt64 {
        withUnsafePointer(to: &taken) { UnsafeRawPointer($0).load(fromByteOffset: caller * 8, as: UInt64.self) }
    }

    private static func setTakenSequence(_ caller: Int, _ value: UInt64) {
        withUnsafeMutablePointer(to: &taken) { UnsafeMutableRawPointer($0).storeBytes(of: value, toByteOffset: caller * 8, as: UInt64.self) }
    }
}
