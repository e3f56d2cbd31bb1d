import CKVM
import Glibc
import GuestImage
import GuestMachine
import KVM
import Monitor

/// One hypercall against a small guest address space: the first word picks the
/// hypercall, the second is its argument (mostly near the mapped range, sometimes raw),
/// the rest fills guest memory, console ring included.
enum HypercallFuzzing {
    static let range: Range<UInt64> = 0x10_0000..<0x11_0000
    static let memory = try! GuestMemory(name: "flexos-fuzz-hypercall", size: range.upperBound - range.lowerBound)
    static let space = GuestAddressSpace(
        slots: [.init(range: range, memory: memory, offset: 0)],
        mapped: [GuestRegion(kind: .heap, range: range, permissions: .readWrite)])

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = InputReader(bytes)
        let number = input.word()
        let raw = input.word()
        let argument =
            raw & 1 == 0 ? range.lowerBound &+ (raw >> 1) % (range.upperBound - range.lowerBound + 64) &- 32 : raw
        memset(memory.base, 0, Int(memory.size))
        // The ring is set up, then the input overwrites it: its indices are the guest's word.
        let console = ConsoleRing(host: memory.base, bytes: 4096)
        let rest = input.rest
        if let base = rest.baseAddress {
            memory.base.copyMemory(from: base, byteCount: min(rest.count, Int(memory.size)))
        }
        let handler = HypercallHandler(space: space, console: console, compartmentCount: 2) { _ in }
        guard let call = Hypercall.decode(address: GuestLayout.hypercallWindow &+ (number % 16) * 8) else { return }
        _ = handler.handle(call, argument: argument)
    }
}

/// The fault analyzer over the hello image's real layout and page tables, with fuzzed
/// registers and fuzzed words on the stack (return addresses, frame pointers).
enum FaultFuzzing {
    struct Setup {
        let memory: CompartmentMemory
        let analyzer: FaultAnalyzer
    }

    nonisolated(unsafe) static var setups: [String: Setup] = [:]

    static func setup(_ image: String) -> Setup? {
        if let done = setups[image] { return done }
        guard let set = try? ImageSet.open(image),
            let layout = try? ImageSetLayout(
                image: set.image, manifest: set.manifest, memory: 2 << 20, sharedMemory: 2 << 20),
            let shared = try? GuestMemory(name: "flexos-fuzz-shared", size: 2 << 20),
            let memory = try? CompartmentMemory(
                setName: "fuzz", imageSet: layout, index: 0, image: set.image, shared: shared, applicationCompartment: 0
            )
        else { return nil }
        let analyzer = FaultAnalyzer(
            compartment: layout.compartments[0], imageSet: layout, pageTables: memory.pageTables,
            space: memory.addressSpace, symbolizer: Symbolizer(image: set.image), exports: set.manifest.exports)
        setups[image] = Setup(memory: memory, analyzer: analyzer)
        return setups[image]
    }

    static func run(_ bytes: UnsafeRawBufferPointer, image: String) {
        guard let setup = setup(image) else { return }
        var input = InputReader(bytes)
        let stack = setup.memory.layout.stack
        var regs = kvm_regs()
        var sregs = kvm_sregs()
        regs.rip = input.word()
        // Half the time the stack pointers point into the stack, where the words below go.
        let rsp = input.word()
        let rbp = input.word()
        regs.rsp = rsp & 1 == 0 ? stack.lowerBound + (rsp >> 1) % (stack.upperBound - stack.lowerBound) : rsp
        regs.rbp = rbp & 1 == 0 ? stack.lowerBound + (rbp >> 1) % (stack.upperBound - stack.lowerBound) : rbp
        sregs.cr2 = input.word()
        var address = stack.upperBound - 4096
        while input.rest.count >= 8, address < stack.upperBound {
            try? setup.memory.addressSpace.write(input.word(), at: address)
            address += 8
        }
        _ = setup.analyzer.analyze(registers: regs, specialRegisters: sregs).render()
    }
}
