/// What a vCPU is doing.
public enum VCPUActivity: String, Codable, Sendable {
    /// In the guest (or handling one of its exits).
    case running
    /// Asleep in the wait hypercall, until a gate call or wake arrives.
    case sleeping
    /// Its VM has ended.
    case stopped
}
