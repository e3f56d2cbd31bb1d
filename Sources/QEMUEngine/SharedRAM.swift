import Glibc
import GuestImage
import GuestMachine
import KVM

/// QEMU's RAM as a memfd flexosd creates and maps: QEMU opens it through /proc
/// (`memory-backend-file,share=on`), so flexosd sees the guest's memory as the guest does,
/// to serve its hypercalls and read its gate counters while it runs.
struct SharedRAM {
    let memory: GuestMemory
    /// Guest-physical addresses over the memfd, limited to what ring 3 may touch (`mapped`).
    let space: GuestAddressSpace
    /// The guest's console ring, in that memory (the shim puts it there with the rest of
    /// the prepared memory; flexosd only attaches to it).
    let consoleRing: ConsoleRing

    /// Below 4 GiB QEMU's `pc` machine gives RAM this much (it is given at least 3.5 GiB);
    /// the rest of the memfd appears at 4 GiB.
    static let belowFourGiB: UInt64 = 3 << 30

    /// A new memfd of `size` bytes, for a QEMU flexosd starts (`arguments`).
    init(size: UInt64, mapped: [GuestRegion], name: String) throws(LaunchError) {
        let memory: GuestMemory
        do { memory = try GuestMemory(name: "flexos:\(name):qemu-ram", size: size) } catch { throw .kvm(error) }
        try self.init(memory: memory, mapped: mapped)
    }

    /// The RAM of a QEMU another process started (a libvirt domain's), mapped by flexosd.
    init(memory: GuestMemory, mapped: [GuestRegion]) throws(LaunchError) {
        guard memory.size >= 3584 << 20 else {
            throw LaunchError.guestMemory("QEMU's RAM has \(memory.size) bytes; the shim's layout needs 3.5 GiB")
        }
        self.memory = memory
        let low = SharedRAM.belowFourGiB
        space = GuestAddressSpace(
            slots: [
                .init(range: 0..<low, memory: memory, offset: 0),
                .init(range: (4 << 30)..<((4 << 30) + memory.size - low), memory: memory, offset: low)
            ], mapped: mapped)
        do {
            consoleRing = ConsoleRing(
                existing: try space.physical(GuestLayout.consoleRingAddress, length: GuestLayout.consoleRingBytes),
                bytes: GuestLayout.consoleRingBytes)
        } catch { throw LaunchError.guestMemory("the console ring lies outside QEMU's RAM: \(error)") }
    }

    /// QEMU's arguments that make this memfd its RAM.
    var arguments: [String] {
        [
            "-object",
            "memory-backend-file,id=flexos-ram,size=\(memory.size),mem-path=/proc/\(getpid())/fd/\(memory.fileDescriptor),share=on",
            "-machine", "pc,memory-backend=flexos-ram"
        ]
    }
}
