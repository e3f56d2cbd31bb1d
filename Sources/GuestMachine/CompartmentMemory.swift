import CFlexOSABI
import CKVM
import Glibc
import GuestImage
import KVM

/// What one compartment's VM sees, built without KVM: its private memory, the address
/// space over it and the shared memory, page tables that map exactly its regions, the
/// image copied in, the console ring and the boot info. Pure set-up, so the fault
/// analyzer and the hypercall handler can be exercised (and fuzzed) without a VM.
package final class CompartmentMemory: @unchecked Sendable {
    package let layout: ImageSetLayout.Compartment
    package let privateMemory: GuestMemory
    /// Bytes of `privateMemory` below the private area: boot info, console ring, image.
    package let lowSize: UInt64
    package let addressSpace: GuestAddressSpace
    package let pageTables: PageTables
    package let console: ConsoleRing

    /// The devices this VM holds (its libraries declare them).
    package let devices: [any Device]
    /// Whether its guest rings doorbells rather than making wake and kick hypercalls.
    package let doorbells: Bool
    /// Whether its guest sleeps in the kernel rather than in the wait hypercall.
    package let sleepsInKernel: Bool

    /// `devices` are the set's: this VM maps those it holds, and each describes itself in
    /// its boot info. `doorbells`: the engine wires them in this VM (flexos_abi.h,
    /// "Doorbells"); `sleepsInKernel`: it maps the sleep entry (flexos_abi.h, "Sleeping in the
    /// kernel"). `enginePages` are the engine's own mappings (the KVM exception entry, the QEMU
    /// shim) and `hypercallMode` how the guest calls the monitor: both differ under the QEMU
    /// engine, whose shim runs in ring 0.
    package init(
        setName: String, imageSet: ImageSetLayout, index: Int, image: ELFImage, shared: GuestMemory,
        applicationCompartment: Int,
        devices: [any Device] = [], doorbells: Bool = false, sleepsInKernel: Bool = false,
        enginePages: [PageMapping] = [],
        hypercallMode: UInt32 = FLEXOS_HYPERCALL_MODE_MMIO
    ) throws(LaunchError) {
        let layout = imageSet.compartments[index]
        self.layout = layout
        self.devices = devices.filter { layout.devices.contains($0.kind) }
        self.doorbells = doorbells
        self.sleepsInKernel = sleepsInKernel
        do {
            lowSize = imageSet.lowMemory.upperBound
            let areaSizes = layout.privateAreas.map { $0.upperBound - $0.lowerBound }
            privateMemory = try GuestMemory(
                name: "flexos:\(setName):\(layout.name)", size: lowSize + areaSizes.reduce(0, +))
            var slots: [GuestAddressSpace.Slot] = [.init(range: imageSet.lowMemory, memory: privateMemory, offset: 0)]
            var offset = lowSize
            for (area, size) in zip(layout.privateAreas, areaSizes) {
                slots.append(.init(range: area, memory: privateMemory, offset: offset))
                offset += size
            }
            slots.append(.init(range: imageSet.sharedArea, memory: shared, offset: 0))
            for device in self.devices {
                slots.append(.init(range: device.kind.window, memory: device.memory, offset: 0))
            }
            addressSpace = GuestAddressSpace(slots: slots, mapped: layout.mapped)
            pageTables = try CompartmentMemory.buildPageTables(layout.mapped, enginePages: enginePages)
            try CompartmentMemory.write(pageTables, into: addressSpace)
            try CompartmentMemory.copyImage(
                image, regions: layout.mapped.filter { $0.kind == .runtime || $0.kind == .library }, into: addressSpace)
            try CompartmentMemory.writeStackGuard(image, into: addressSpace)
            console = ConsoleRing(
                host: try addressSpace.physical(GuestLayout.consoleRingAddress, length: GuestLayout.consoleRingBytes),
                bytes: GuestLayout.consoleRingBytes)
            var bootInfo = CompartmentMemory.bootInfo(
                layout, imageSet: imageSet, applicationCompartment: applicationCompartment)
            bootInfo.hypercall_mode = hypercallMode
            bootInfo.doorbells = doorbells ? FLEXOS_DOORBELL_WINDOW : 0
            bootInfo.sleep_entry = sleepsInKernel ? FLEXOS_SLEEP_ENTRY : 0
            for device in devices {
                device.describe(
                    in: &bootInfo,
                    for: DeviceMachine(holdsDevice: layout.devices.contains(device.kind), doorbells: doorbells))
            }
            try CompartmentMemory.writeKeyedTable(layout, into: &bootInfo, space: addressSpace)
            try CompartmentMemory.seedCompartmentRuntimes(layout, space: addressSpace)
            try addressSpace.physical(GuestLayout.bootInfoAddress, length: UInt64(MemoryLayout<flexos_boot_info>.size))
                .storeBytes(of: bootInfo, as: flexos_boot_info.self)
        } catch let error as KVMError {
            throw LaunchError.kvm(error)
        } catch let error as LaunchError {
            throw error
        } catch {
            throw LaunchError.guestMemory("\(error)")
        }
    }

    /// Under intel-mpk, the table of the compartments sharing the VM, in the boot-info page.
    private static func writeKeyedTable(
        _ layout: ImageSetLayout.Compartment, into info: inout flexos_boot_info,
        space: GuestAddressSpace
    ) throws(GuestAccessError) {
        guard !layout.keyed.isEmpty else { return }
        let table = GuestLayout.bootInfoAddress + FLEXOS_BOOT_KEYED_TABLE_OFFSET
        for (index, member) in layout.keyed.enumerated() {
            let entry = flexos_keyed_compartment(
                heap_base: member.heap.lowerBound, heap_size: member.heap.upperBound - member.heap.lowerBound,
                stack_base: member.stack.lowerBound, stack_size: member.stack.upperBound - member.stack.lowerBound,
                key: UInt32(member.key), pkru: member.pkru, heap_checks: member.heapChecks ? 1 : 0, reserved: 0)
            let size = UInt64(MemoryLayout<flexos_keyed_compartment>.stride)
            try space.physical(table + UInt64(index) * size, length: size).storeBytes(
                of: entry, as: flexos_keyed_compartment.self)
        }
        info.keyed_count = UInt32(layout.keyed.count)
        info.keyed_application = UInt32(layout.keyedApplication ?? 0)
        info.keyed_table = table
    }

    /// A random seed at the start of each compartment's private heap region, where the
    /// runtime keeps that compartment's state (struct flexos_compartment_runtime): under
    /// intel-mpk only the compartment's own key reaches it, unlike the boot info's seed.
    private static func seedCompartmentRuntimes(_ layout: ImageSetLayout.Compartment, space: GuestAddressSpace)
        throws(GuestAccessError)
    {
        var random = SystemRandomNumberGenerator()
        for heap in layout.keyed.isEmpty ? [layout.heap] : layout.keyed.map(\.heap) {
            var runtime = flexos_compartment_runtime()
            runtime.random_state = (random.next(), random.next(), random.next(), random.next())
            try space.physical(heap.lowerBound, length: UInt64(MemoryLayout<flexos_compartment_runtime>.size))
                .storeBytes(of: runtime, as: flexos_compartment_runtime.self)
        }
    }

    /// The stack canary, in the image's read-only memory: random per VM, with a low byte
    /// that is never 0 (string copies stop short of it). The guest cannot write it.
    private static func writeStackGuard(_ image: ELFImage, into space: GuestAddressSpace) throws(GuestAccessError) {
        guard let address = image.stackGuardAddress else { return }
        var random = SystemRandomNumberGenerator()
        let value: UInt64 = random.next() | 0xFF
        try space.physical(address, length: 8).storeBytes(of: value, as: UInt64.self)
    }

    /// Page tables that map exactly `regions`, identity-mapped.
    package static func buildPageTables(_ regions: [GuestRegion], enginePages: [PageMapping] = []) throws(LaunchError)
        -> PageTables
    {
        var tables = PageTables(area: GuestLayout.pageTableArea)
        do {
            for region in regions {
                var mapping = PageMapping.identity(region.range, region.permissions)
                mapping.protectionKey = region.protectionKey
                try tables.map(mapping)
            }
            for mapping in enginePages { try tables.map(mapping) }
        } catch {
            throw LaunchError.pageTables(error)
        }
        return tables
    }

    private static func write(_ tables: PageTables, into space: GuestAddressSpace) throws(GuestAccessError) {
        for (address, entries) in tables.tables {
            let host = try space.physical(address, length: GuestLayout.pageSize)
            entries.withUnsafeBytes { host.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// Copies the initialised bytes of `regions` from the image; the rest stays zero.
    private static func copyImage(_ image: ELFImage, regions: [GuestRegion], into space: GuestAddressSpace)
        throws(GuestAccessError)
    {
        for region in regions {
            guard let segment = image.segment(containing: region.range.lowerBound) else { continue }
            let initialised = segment.virtualAddress..<(segment.virtualAddress + segment.fileSize)
            let start = max(region.range.lowerBound, initialised.lowerBound)
            let end = min(region.range.upperBound, initialised.upperBound)
            guard start < end else { continue }
            let bytes = image.fileBytes(of: segment)
            let source = UnsafeRawBufferPointer(
                rebasing: bytes[Int(start - segment.virtualAddress)..<Int(end - segment.virtualAddress)])
            try space.physical(start, length: end - start).copyMemory(
                from: source.baseAddress!, byteCount: source.count)
        }
    }

    private static func bootInfo(
        _ layout: ImageSetLayout.Compartment, imageSet: ImageSetLayout, applicationCompartment: Int
    ) -> flexos_boot_info {
        var info = flexos_boot_info()
        info.magic = FLEXOS_BOOT_MAGIC
        info.abi_version = FLEXOS_ABI_VERSION
        info.compartment = UInt32(layout.index)
        info.compartment_count = UInt32(imageSet.compartments.count)
        info.app_compartment = UInt32(applicationCompartment)
        info.heap_base = layout.heap.lowerBound
        info.heap_size = layout.heap.upperBound - layout.heap.lowerBound
        info.stack_base = layout.stack.lowerBound
        info.stack_size = layout.stack.upperBound - layout.stack.lowerBound
        info.console_ring = GuestLayout.consoleRingAddress
        info.shared_heap_base = imageSet.sharedHeap.lowerBound
        info.shared_heap_size = imageSet.sharedHeap.upperBound - imageSet.sharedHeap.lowerBound
        info.shared_stack_base = layout.sharedStack.lowerBound
        info.shared_stack_size = layout.sharedStack.upperBound - layout.sharedStack.lowerBound
        info.gate_block = imageSet.gateBlock.lowerBound
        var random = SystemRandomNumberGenerator()
        info.random_seed = (random.next(), random.next(), random.next(), random.next())
        info.tsc_hz = UInt64(TimeStampCounter.ticksPerNanosecond * 1e9)
        info.heap_checks = layout.heapChecks ? 1 : 0
        return info
    }
}
