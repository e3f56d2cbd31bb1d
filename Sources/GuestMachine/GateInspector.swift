import CFlexOSABI
import ControlProtocol
import GuestImage

/// Reads the gate block in shared memory (flexos_abi.h): which gate calls are in flight.
/// The guests write it without exits; the monitor only reads it, through the address
/// space of a VM that maps it.
package struct GateInspector {
    /// One call a callee has taken up and not yet answered.
    package struct Call {
        package let caller: Int
        package let exportIndex: UInt32
        package let arguments: [UInt64]
    }

    package let space: GuestAddressSpace
    package let gateBlock: UInt64

    package init(space: GuestAddressSpace, gateBlock: UInt64) {
        self.space = space
        self.gateBlock = gateBlock
    }

    /// The calls into VM `callee` that are posted and not yet answered.
    package func callsInService(callee: Int, machines: Int) -> [Call] {
        (0..<machines).compactMap { caller -> Call? in
            guard caller != callee,
                let channel = try? space.read(
                    flexos_gate_channel.self, at: channelAddress(caller: caller, callee: callee)),
                channel.request_sequence != channel.reply_sequence
            else { return nil }
            let args = channel.args
            return Call(
                caller: caller, exportIndex: channel.export_index,
                arguments: [args.0, args.1, args.2, args.3, args.4, args.5])
        }
    }

    /// VM `machine`'s gate calls as `inspect` shows them: counted, and one in 64 timed.
    package func gates(of machine: Int) -> CompartmentSnapshot.Gates {
        let state = state(of: machine)
        let sampled = state?.calls_sampled ?? 0
        return CompartmentSnapshot.Gates(
            callsOut: state?.calls_out ?? 0, callsIn: state?.calls_in ?? 0, sampledCalls: sampled,
            meanNanoseconds: sampled == 0
                ? nil : TimeStampCounter.nanoseconds(Double(state!.call_cycles_total) / Double(sampled)),
            maxNanoseconds: sampled == 0 ? nil : TimeStampCounter.nanoseconds(Double(state!.call_cycles_max)),
            sleeps: state?.sleeps, doorbellsRung: state?.doorbells_rung)
    }

    /// The state each VM keeps in the gate block (calls made and served, time in calls).
    package func state(of machine: Int) -> flexos_compartment_state? {
        try? space.read(flexos_compartment_state.self, at: gateBlock + flexos_gate_state_offset(UInt32(machine)))
    }

    private func channelAddress(caller: Int, callee: Int) -> UInt64 {
        gateBlock + flexos_gate_channel_offset(UInt32(caller), UInt32(callee))
    }
}
