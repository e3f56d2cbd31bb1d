/// Why `KVM_RUN` returned: the monitor's view of one VM exit.
public enum VCPUExit: Equatable, Sendable {
    /// The guest wrote `value` (`length` bytes) to `address`, which has no memory slot.
    case mmioWrite(address: UInt64, value: UInt64, length: Int)
    /// The guest read `length` bytes from `address`, which has no memory slot.
    case mmioRead(address: UInt64, length: Int)
    /// The guest took a fault it could not handle (triple fault): it has stopped.
    case shutdown
    /// A signal interrupted KVM_RUN (the monitor kicked the vCPU).
    case interrupted
    /// The guest executed HLT.
    case halt
    /// The guest did port I/O.
    case io(port: UInt16, isWrite: Bool)
    /// KVM could not enter the guest; `reason` is the hardware's.
    case failedEntry(reason: UInt32)
    /// KVM hit an internal error (often an instruction it could not emulate).
    case internalError(suberror: UInt32)
    /// Any other KVM_EXIT_* code.
    case other(reason: UInt32)

    /// A short name for counting exits by reason.
    public var name: String {
        switch self {
        case .mmioWrite, .mmioRead: return "mmio"
        case .shutdown: return "shutdown"
        case .interrupted: return "interrupted"
        case .halt: return "halt"
        case .io: return "io"
        case .failedEntry: return "fail_entry"
        case .internalError: return "internal_error"
        case .other(let reason): return "exit_\(reason)"
        }
    }
}
