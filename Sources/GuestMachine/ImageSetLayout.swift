import CFlexOSABI
import GuestImage

/// Where everything of an image set lives in guest memory, and what each compartment's
/// VM maps. Pure: computed from the image, its manifest and the memory sizes, before any
/// VM exists, so it can be tested and shown without KVM.
public struct ImageSetLayout: Sendable {
    /// One VM's view of the address space. Under `vmept` each compartment has its own VM;
    /// under `fcalls` (and `intel-mpk`) one VM holds every compartment.
    public struct Compartment: Sendable {
        public let index: Int
        public let name: String
        /// The conformation's compartments this VM runs.
        public let members: [String]
        /// Everything its VM maps, with permissions. Nothing else is reachable from it.
        public let mapped: [GuestRegion]
        public let stack: Range<UInt64>
        public let heap: Range<UInt64>
        /// Whether its heap guards its blocks (hardening heap-checks of any compartment it runs).
        public let heapChecks: Bool
        public let sharedStack: Range<UInt64>
        /// The guest-physical range backed by its private memory (guard page, stack, heap).
        public let privateArea: Range<UInt64>
        /// Under intel-mpk: each conformation compartment's own area and protection key
        /// (the VM's stack, heap and area above are the application's). Empty otherwise.
        public let keyed: [KeyedArea]
        /// Under intel-mpk, the index in `keyed` of the compartment that runs main.
        public let keyedApplication: Int?
        /// The devices its VM holds, each mapped at its window here and in no other VM.
        public let devices: [DeviceKind]

        /// Every private area the VM's memory backs.
        public var privateAreas: [Range<UInt64>] { keyed.isEmpty ? [privateArea] : keyed.map(\.area) }
    }

    /// A compartment of an intel-mpk image set: its area, and the key its pages carry.
    public struct KeyedArea: Sendable, Equatable {
        public let name: String
        /// 1 + its index in the conformation; key 0 is what every compartment shares.
        public let key: UInt8
        public let area: Range<UInt64>
        public let stack: Range<UInt64>
        public let heap: Range<UInt64>
        public let heapChecks: Bool

        /// PKRU while it runs: every key's access and write disabled but 0 and its own.
        public var pkru: UInt32 { GuestLayout.protectionKeyRights(allowing: key) }
    }

    /// The areas of an intel-mpk image set's compartments, in conformation order.
    package static func keyedAreas(_ manifest: ImageManifest, memory: UInt64) -> [KeyedArea] {
        manifest.compartments.enumerated().map { index, compartment in
            let stride = manifest.mechanism.isolation.areaStride
            let area = GuestLayout.compartmentArea(index, stride: stride)
            let stack = GuestLayout.stack(ofCompartment: index, stride: stride)
            let heap = heap(
                above: stack, end: area.lowerBound + memory, guarded: compartment.hardening.contains(.guardPages)
            ).heap
            return KeyedArea(
                name: compartment.name, key: UInt8(index + 1), area: area.lowerBound..<(area.lowerBound + memory),
                stack: stack, heap: heap, heapChecks: compartment.hardening.contains(.heapChecks))
        }
    }

    /// The heap between the top of `stack` and `end`; under guard-pages, with an unmapped
    /// page on each side (returned as `guards`, for naming a fault in them).
    package static func heap(above stack: Range<UInt64>, end: UInt64, guarded: Bool) -> (
        heap: Range<UInt64>, guards: [Range<UInt64>]
    ) {
        guard guarded else { return (stack.upperBound..<end, []) }
        let page = GuestLayout.pageSize
        return (
            (stack.upperBound + page)..<(end - page), [stack.upperBound..<(stack.upperBound + page), (end - page)..<end]
        )
    }

    public static let stackSize: UInt64 = GuestLayout.stackSize
    public static let sharedStackSize: UInt64 = 64 * 1024
    public static let minimumMemory: UInt64 = 1 << 20
    public static let defaultMemory: UInt64 = 64 << 20
    /// Enough for the key-value appliance's buffers with 16 MiB values (pages are allocated on first touch).
    public static let defaultSharedMemory: UInt64 = 64 << 20

    public let compartments: [Compartment]
    /// The low private range every VM has: boot info, console ring and the image.
    public let lowMemory: Range<UInt64>
    public let sharedArea: Range<UInt64>
    public let gateBlock: Range<UInt64>
    public let sharedHeap: Range<UInt64>
    /// Every region of every compartment, for naming any address in a report.
    public let allRegions: [GuestRegion]
    /// The VM that holds a device of `kind` (its library's), if the image set has one.
    public func machine(holding kind: DeviceKind) -> Int? {
        compartments.first { $0.devices.contains(kind) }?.index
    }

    /// Refuses sizes no layout can have: what a launch checks before anything else. With
    /// `isolation`, against its own limit; without, against the largest of any mechanism.
    public static func checkSizes(memory: UInt64, sharedMemory: UInt64, isolation: (any Isolation)? = nil)
        throws(LaunchError)
    {
        guard memory >= ImageSetLayout.minimumMemory else {
            throw LaunchError.memoryTooSmall(memory, minimum: ImageSetLayout.minimumMemory)
        }
        let maximum = isolation?.areaStride ?? GuestLayout.maxCompartmentMemory
        guard memory <= maximum else {
            throw LaunchError.memoryTooLarge(memory, maximum: maximum, mechanism: isolation?.mechanism)
        }
        let sharedMaximum = GuestLayout.shared.upperBound - GuestLayout.shared.lowerBound
        guard sharedMemory <= sharedMaximum else {
            throw LaunchError.sharedMemoryTooLarge(sharedMemory, maximum: sharedMaximum)
        }
        for (what, size) in [("memory", memory), ("shared memory", sharedMemory)] where size % GuestLayout.pageSize != 0
        {
            throw LaunchError.sizeNotPageMultiple(what: what, size: size)
        }
    }

    /// Lays out `manifest`'s compartments over `image` with `memory` bytes of private
    /// memory per compartment and `sharedMemory` bytes of shared area.
    public init(image: ELFImage, manifest: ImageManifest, memory: UInt64, sharedMemory: UInt64) throws(LaunchError) {
        try ImageSetLayout.checkSizes(
            memory: memory, sharedMemory: sharedMemory, isolation: manifest.mechanism.isolation)
        let page = GuestLayout.pageSize
        let privateSegments = image.segments.filter { GuestLayout.image.contains($0.virtualAddress) }
        let sharedSegments = image.segments.filter { GuestLayout.shared.contains($0.virtualAddress) }
        lowMemory =
            0..<alignUp(
                privateSegments.map(\.range.upperBound).max() ?? GuestLayout.image.lowerBound, GuestLayout.largePageSize
            )

        // The shared area: .data_shared, the gate block, a shared stack per compartment, the shared heap.
        let sharedDataEnd = alignUp(sharedSegments.map(\.range.upperBound).max() ?? GuestLayout.shared.lowerBound, page)
        gateBlock = sharedDataEnd..<(sharedDataEnd + UInt64(FLEXOS_GATE_BLOCK_PAGES) * page)
        var cursor = gateBlock.upperBound
        var sharedStacks: [(guard: Range<UInt64>, stack: Range<UInt64>)] = []
        let groups = ImageSetLayout.machines(manifest)
        for _ in groups {
            sharedStacks.append(
                (cursor..<(cursor + page), (cursor + page)..<(cursor + page + ImageSetLayout.sharedStackSize)))
            cursor += page + ImageSetLayout.sharedStackSize
        }
        let sharedEnd = GuestLayout.shared.lowerBound + sharedMemory
        guard cursor + 64 * 1024 <= sharedEnd else {
            throw LaunchError.sharedMemoryTooSmall(
                sharedMemory, minimum: cursor + 64 * 1024 - GuestLayout.shared.lowerBound)
        }
        sharedArea = GuestLayout.shared.lowerBound..<sharedEnd
        sharedHeap = cursor..<sharedEnd

        var common: [GuestRegion] = [
            GuestRegion(
                kind: .bootInfo, range: GuestLayout.bootInfoAddress..<(GuestLayout.bootInfoAddress + page),
                permissions: .readOnly),
            GuestRegion(
                kind: .console,
                range: GuestLayout.consoleRingAddress..<(GuestLayout.consoleRingAddress + GuestLayout.consoleRingBytes),
                permissions: .readWrite),
            GuestRegion(
                kind: .hypercallWindow, range: GuestLayout.hypercallWindow..<(GuestLayout.hypercallWindow + page),
                permissions: .readWrite),
            ImageSetLayout.gatePage(gateBlock, 0, .readOnly, detail: "header"),
            GuestRegion(kind: .sharedHeap, range: sharedHeap, permissions: .readWrite)
        ]
        common += try ImageSetLayout.sectionRegions(
            manifest.runtime, kind: .runtime, segments: image.segments, manifest: manifest)
        common += try ImageSetLayout.sectionRegions(
            manifest.shared, kind: .sharedData, segments: sharedSegments, manifest: manifest)
        let sharedStackRegions = zip(groups, sharedStacks).map { group, stack in
            GuestRegion(kind: .sharedStack, range: stack.stack, permissions: .readWrite, compartment: group.name)
        }

        let isolation = manifest.mechanism.isolation
        if let limit = isolation.compartmentLimit, manifest.compartments.count > limit.count {
            throw LaunchError.badRegion(
                name: "compartments", start: 0, reason: "number \(manifest.compartments.count) under \(limit.reason)")
        }
        var compartments: [Compartment] = []
        var all = common + sharedStackRegions
        // Under intel-mpk each conformation compartment has an area (stack, heap) of its own,
        // tagged with its key, and the one VM starts on the application's; otherwise a VM has one.
        let keyed = isolation.keysCompartments ? ImageSetLayout.keyedAreas(manifest, memory: memory) : []
        let keyedApplication = keyed.isEmpty ? nil : manifest.applicationCompartment
        for (index, compartment) in groups.enumerated() {
            let application = keyedApplication.map { keyed[$0] }
            let area = application?.area ?? GuestLayout.compartmentArea(index, stride: isolation.areaStride)
            let stack = application?.stack ?? GuestLayout.stack(ofCompartment: index, stride: isolation.areaStride)
            let hardening = manifest.compartments.filter { compartment.members.contains($0.name) }.flatMap(\.hardening)
            let heapGuards = ImageSetLayout.heap(
                above: stack, end: area.lowerBound + memory, guarded: hardening.contains(.guardPages))
            let heap = application?.heap ?? heapGuards.heap
            var own =
                keyed.isEmpty
                ? [
                    GuestRegion(kind: .stack, range: stack, permissions: .readWrite, compartment: compartment.name),
                    GuestRegion(kind: .heap, range: heap, permissions: .readWrite, compartment: compartment.name)
                ]
                : keyed.flatMap { member in
                    [
                        GuestRegion(
                            kind: .stack, range: member.stack, permissions: .readWrite, compartment: member.name,
                            protectionKey: member.key),
                        GuestRegion(
                            kind: .heap, range: member.heap, permissions: .readWrite, compartment: member.name,
                            protectionKey: member.key)
                    ]
                }
            own += ImageSetLayout.gatePages(gateBlock, of: index, machines: groups.map(\.name))
            let devices = manifest.deviceKinds.filter { compartment.members.contains($0.library.compartment) }
            own += devices.map { kind, library in
                GuestRegion(
                    kind: .device, range: kind.window, permissions: .readWrite, compartment: compartment.name,
                    library: library.name, detail: kind.description)
            }
            for library in manifest.libraries where compartment.members.contains(library.compartment) {
                let key = keyed.first { $0.name == library.compartment }?.key ?? 0
                own += try ImageSetLayout.sectionRegions(
                    library.regions, kind: .library, segments: image.segments, manifest: manifest,
                    library: library.name, compartment: library.compartment, protectionKey: key)
            }
            compartments.append(
                Compartment(
                    index: index, name: compartment.name, members: compartment.members,
                    mapped: common + sharedStackRegions + own,
                    stack: stack, heap: heap, heapChecks: application?.heapChecks ?? hardening.contains(.heapChecks),
                    sharedStack: sharedStacks[index].stack,
                    privateArea: area.lowerBound..<(area.lowerBound + memory), keyed: keyed,
                    keyedApplication: keyedApplication, devices: devices.map(\.kind)))
            let guards =
                keyed.isEmpty
                ? [(compartment.name, area, heapGuards.guards)]
                : keyed.map {
                    (
                        $0.name, $0.area,
                        $0.heap.lowerBound == $0.stack.upperBound
                            ? [] : [$0.stack.upperBound..<$0.heap.lowerBound, $0.heap.upperBound..<$0.area.upperBound]
                    )
                }
            all +=
                own.filter { $0.kind != .gateBlock }
                + guards.flatMap { name, area, heapGuards in
                    [
                        GuestRegion(
                            kind: .stackGuard, range: area.lowerBound..<(area.lowerBound + page),
                            permissions: .readOnly, compartment: name)
                    ]
                        + heapGuards.map {
                            GuestRegion(kind: .heapGuard, range: $0, permissions: .readOnly, compartment: name)
                        }
                }
        }
        all += zip(groups, sharedStacks).map { group, stack in
            GuestRegion(kind: .sharedStackGuard, range: stack.guard, permissions: .readOnly, compartment: group.name)
        }
        // Each gate page once, for naming addresses: states, then the pairs' channels.
        let block = gateBlock
        let names = groups.map(\.name)
        var named = Set<UInt64>()
        all += names.indices.flatMap { ImageSetLayout.gatePages(block, of: $0, machines: names) }
            .filter { $0.permissions.writable && named.insert($0.range.lowerBound).inserted }
        self.compartments = compartments
        self.allRegions = all
    }

    /// The gate pages VM `index` maps besides the header: every VM's state (its own
    /// writable, the others' read-only: it reads whether they sleep) and the channels of
    /// each pair it belongs to, which no third VM maps.
    package static func gatePages(_ block: Range<UInt64>, of index: Int, machines: [String]) -> [GuestRegion] {
        var pages: [GuestRegion] = []
        for other in machines.indices {
            let permissions: PagePermissions = other == index ? .readWrite : .readOnly
            pages.append(
                gatePage(
                    block, 1 + UInt64(other), permissions, detail: "state of \(machines[other])", owner: machines[other]
                ))
        }
        for other in machines.indices where other != index {
            let page = flexos_gate_pair_page(UInt32(index), UInt32(other))
            let (low, high) = (min(index, other), max(index, other))
            pages.append(gatePage(block, page, .readWrite, detail: "channels \(machines[low]) <-> \(machines[high])"))
        }
        return pages
    }

    /// Page `number` of the gate block.
    private static func gatePage(
        _ block: Range<UInt64>, _ number: UInt64, _ permissions: PagePermissions, detail: String, owner: String? = nil
    ) -> GuestRegion {
        let start = block.lowerBound + number * GuestLayout.pageSize
        return GuestRegion(
            kind: .gateBlock, range: start..<(start + GuestLayout.pageSize), permissions: permissions,
            compartment: owner, detail: detail)
    }

    /// The VMs an image set needs: one per compartment under `vmept`, one for all otherwise.
    package static func machines(_ manifest: ImageManifest) -> [(name: String, members: [String])] {
        manifest.mechanism.isolation.machines(of: manifest.compartments.map(\.name))
    }

    /// The index of the VM that runs `compartment`.
    public func machineIndex(of compartment: String) -> Int? {
        compartments.firstIndex { $0.members.contains(compartment) }
    }

    /// The region (of any compartment) that contains `address`.
    public func region(containing address: UInt64) -> GuestRegion? {
        allRegions.first { $0.range.contains(address) }
    }

    /// Turns manifest regions into mapped regions, taking permissions from the ELF
    /// segment that holds each one.
    private static func sectionRegions(
        _ regions: [ImageManifest.Region], kind: GuestRegion.Kind, segments: [ELFSegment], manifest: ImageManifest,
        library: String? = nil, compartment: String? = nil, protectionKey: UInt8 = 0
    ) throws(LaunchError) -> [GuestRegion] {
        var result: [GuestRegion] = []
        for region in regions where region.size > 0 {
            guard region.start % GuestLayout.pageSize == 0,
                let segment = segments.first(where: { $0.range.contains(region.start) })
            else {
                throw LaunchError.badRegion(
                    name: region.name, start: region.start, reason: "does not start a page of a loadable segment")
            }
            let pages = region.start..<alignUp(region.range.upperBound, GuestLayout.pageSize)
            guard pages.upperBound <= alignUp(segment.range.upperBound, GuestLayout.pageSize) else {
                throw LaunchError.badRegion(
                    name: region.name, start: region.start, reason: "runs past the end of its segment")
            }
            result.append(
                GuestRegion(
                    kind: kind, range: pages,
                    permissions: PagePermissions(writable: segment.writable, executable: segment.executable),
                    compartment: compartment, library: library, detail: region.name, protectionKey: protectionKey))
        }
        return result
    }
}
