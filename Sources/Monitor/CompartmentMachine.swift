import CFlexOSABI
import CKVM
import Glibc
import GuestImage
import GuestMachine
import KVM

/// The VM that runs one compartment: its memory (above), the memory slots that back it,
/// and its one vCPU, ready to run.
///
/// Set-up reads top to bottom: memory, VM and memory slots, vCPU. Everything is owned
/// by this object, so a failure half-way releases what was made.
final class CompartmentMachine: @unchecked Sendable {
    let memory: CompartmentMemory
    let virtualMachine: VirtualMachine
    let vcpu: VCPU
    /// KVM's counters for this vCPU, when the host offers them.
    let statistics: KVMStatistics?

    var layout: ImageSetLayout.Compartment { memory.layout }
    var addressSpace: GuestAddressSpace { memory.addressSpace }
    var pageTables: PageTables { memory.pageTables }
    var console: ConsoleRing { memory.console }
    /// Whether its compartments are told apart by protection keys (intel-mpk).
    var hasProtectionKeys: Bool { !layout.keyed.isEmpty }

    init(
        hypervisor: Hypervisor, setName: String, imageSet: ImageSetLayout, index: Int, image: ELFImage,
        shared: GuestMemory, applicationCompartment: Int,
        devices: [any Device] = [], doorbells: Bool = false, sleepInKernel: Bool = false,
        haltPolling: UInt64 = 0
    ) throws(LaunchError) {
        memory = try CompartmentMemory(
            setName: setName, imageSet: imageSet, index: index, image: image, shared: shared,
            applicationCompartment: applicationCompartment, devices: devices, doorbells: doorbells,
            sleepsInKernel: sleepInKernel, enginePages: ExceptionEntry.mappings(sleepInKernel: sleepInKernel))
        do { try ExceptionEntry.write(into: memory.addressSpace, sleepInKernel: sleepInKernel) } catch {
            throw LaunchError.badRegion(
                name: "exception entry", start: GuestLayout.trapArea.lowerBound, reason: error.description)
        }
        let layout = memory.layout
        do {
            virtualMachine = try hypervisor.createVirtualMachine()
            // One memory slot per range of the address space: low memory, each private area, the shared area, the device.
            for (number, slot) in memory.addressSpace.slots.enumerated() {
                try virtualMachine.mapMemory(
                    slot: UInt32(number), guestAddress: slot.range.lowerBound, memory: slot.memory, offset: slot.offset,
                    length: slot.range.upperBound - slot.range.lowerBound)
            }
            if sleepInKernel {
                try virtualMachine.addLocalAPIC()
                try virtualMachine.setHaltPolling(nanoseconds: haltPolling)
            }
            vcpu = try virtualMachine.createVCPU()
            if sleepInKernel { try vcpu.enableLocalAPIC(vector: ExceptionEntry.wakeVector) }
            try vcpu.setSpecialRegisters(
                VCPUState.specialRegisters(
                    from: vcpu.specialRegisters(), pageTableRoot: memory.pageTables.root,
                    protectionKeys: !layout.keyed.isEmpty))
            try vcpu.setRegisters(
                VCPUState.registers(
                    entry: image.entry, stackTop: layout.stack.upperBound - 8, argument: GuestLayout.bootInfoAddress))
            // intel-mpk: the application's compartment starts with its own key (and key 0) open, as the QEMU shim starts it.
            if let application = layout.keyedApplication.map({ layout.keyed[$0] }) {
                try vcpu.setProtectionKeyRights(application.pkru)
            }
            statistics = hypervisor.hasBinaryStats ? try? vcpu.statistics() : nil
        } catch {
            throw LaunchError.kvm(error)
        }
    }
}
