import CFlexOSGuest

/// A heap over one region of memory: first fit over a free list kept in address order,
/// so that a free merges the block with its free neighbours and memory is reused.
///
/// All of the heap's state lives in a header at the start of its region, so the same
/// code serves a compartment's private heap and the shared heap that every VM of an image
/// set maps at the same address; a spin lock in the header serialises the VMs.
struct Heap {
    /// The header at the start of the region.
    private struct Header {
        var lock: UInt32
        var ready: UInt32
        var freeList: UInt
        var start: UInt
        var end: UInt
        var bytesInUse: UInt
    }

    private static let blockHeader: UInt = 16
    private static let minimumBlock: UInt = 32
    private static let cookie: UInt = 0xF1E0_5EA5_0000_0000
    private static let usedBit: UInt = 1

    private let header: UnsafeMutablePointer<Header>

    /// The heap already formatted at `base`.
    init(formattedAt base: UInt64) {
        header = UnsafeMutablePointer(bitPattern: UInt(base))!
    }

    /// A heap over `size` bytes at `base`. The first user to take the lock formats it.
    init(base: UInt64, size: UInt64) {
        header = UnsafeMutablePointer(bitPattern: UInt(base))!
        withLock {
            guard header.pointee.ready == 0 else { return }
            let start = alignUp(UInt(base) + UInt(MemoryLayout<Header>.size), 16)
            let end = UInt(base + size) & ~15
            header.pointee.start = start
            header.pointee.end = end
            header.pointee.freeList = start
            header.pointee.bytesInUse = 0
            Heap.setWord(start, 0, end - start)
            Heap.setWord(start, 1, 0)
            header.pointee.ready = 1
        }
    }

    /// Bytes handed out and not yet freed, headers included.
    var bytesInUse: UInt { header.pointee.bytesInUse }

    /// The range of addresses the heap hands out.
    var start: UInt { header.pointee.start }
    var end: UInt { header.pointee.end }

    /// Bytes the heap manages in all.
    var capacity: UInt { header.pointee.end - header.pointee.start }

    /// `byteCount` bytes aligned to `alignment` (a power of two), or nil when the heap is full.
    func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        let alignment = max(UInt(alignment), 16)
        let need = max(alignUp(UInt(max(byteCount, 1)), 16) + Heap.blockHeader, Heap.minimumBlock)
        return withLock { () -> UnsafeMutableRawPointer? in
            var previous: UInt = 0
            var block = header.pointee.freeList
            while block != 0 {
                let size = Heap.word(block, 0), next = Heap.word(block, 1)
                var payload = alignUp(block + Heap.blockHeader, alignment)
                while payload - Heap.blockHeader != block && payload - Heap.blockHeader - block < Heap.minimumBlock { payload += alignment }
                let front = payload - Heap.blockHeader - block
                if front + need <= size {
                    carve(block: block, size: size, next: next, previous: previous, front: front, need: need)
                    return UnsafeMutableRawPointer(bitPattern: payload)
                }
                previous = block
                block = next
            }
            return nil
        }
    }

    /// Returns the block at `pointer` to the heap, merging it with free neighbours.
    func free(_ pointer: UnsafeMutableRawPointer) {
        let block = UInt(bitPattern: pointer) - Heap.blockHeader
        withLock {
            let size = Heap.word(block, 0)
            guard block >= header.pointee.start, block < header.pointee.end,
                  size & Heap.usedBit != 0, Heap.word(block, 1) == Heap.cookie ^ block
            else { panic("free of a pointer that is not an allocated block (a double free or a stray pointer)") }
            header.pointee.bytesInUse -= size & ~Heap.usedBit
            insertFree(block, size: size & ~Heap.usedBit)
        }
    }

    /// Splits free block `block` into [front gap][allocated `need`][tail] and relinks.
    private func carve(block: UInt, size: UInt, next: UInt, previous: UInt, front: UInt, need: UInt) {
        var allocated = need
        var remainder = next
        let allocatedStart = block + front
        let tailSize = size - front - need
        if tailSize >= Heap.minimumBlock {
            let tail = allocatedStart + need
            Heap.setWord(tail, 0, tailSize)
            Heap.setWord(tail, 1, next)
            remainder = tail
        } else {
            allocated += tailSize
        }
        if front > 0 {
            Heap.setWord(block, 0, front)
            Heap.setWord(block, 1, remainder)
        } else if previous == 0 {
            header.pointee.freeList = remainder
        } else {
            Heap.setWord(previous, 1, remainder)
        }
        Heap.setWord(allocatedStart, 0, allocated | Heap.usedBit)
        Heap.setWord(allocatedStart, 1, Heap.cookie ^ allocatedStart)
        header.pointee.bytesInUse += allocated
    }

    private func insertFree(_ block: UInt, size: UInt) {
        var previous: UInt = 0
        var next = header.pointee.freeList
        while next != 0 && next < block {
            previous = next
            next = Heap.word(next, 1)
        }
        var start = block, length = size
        if next != 0 && block + size == next {
            length += Heap.word(next, 0)
            next = Heap.word(next, 1)
        }
        if previous != 0 && previous + Heap.word(previous, 0) == block {
            start = previous
            length += Heap.word(previous, 0)
        } else if previous == 0 {
            header.pointee.freeList = block
        } else {
            Heap.setWord(previous, 1, block)
        }
        Heap.setWord(start, 0, length)
        Heap.setWord(start, 1, next)
    }

    private func withLock<R>(_ body: () -> R) -> R {
        let lock = UnsafeMutableRawPointer(header).assumingMemoryBound(to: UInt32.self)
        while flexos_exchange32(lock, 1) != 0 {
            while flexos_load32_acquire(lock) != 0 { flexos_cpu_relax() }
        }
        let result = body()
        flexos_store32_release(lock, 0)
        return result
    }

    private static func word(_ block: UInt, _ index: Int) -> UInt {
        UnsafePointer<UInt>(bitPattern: block)![index]
    }

    private static func setWord(_ block: UInt, _ index: Int, _ value: UInt) {
        UnsafeMutablePointer<UInt>(bitPattern: block)![index] = value
    }
}

func alignUp(_ value: UInt, _ alignment: UInt) -> UInt { (value + alignment - 1) & ~(alignment - 1) }

/// This compartment's private heap: what Swift objects, arrays and strings live in.
///
/// Under intel-mpk the VM holds several compartments, each with a heap its key protects:
/// allocations come from the running compartment's heap, formatted on its first use by
/// that compartment itself (no other may write it).
public enum PrivateHeap {
    nonisolated(unsafe) static var single: Heap? = nil

    static func attach(base: UInt64, size: UInt64) {
        if bootInfo?.pointee.keyed_count ?? 0 == 0 { single = Heap(base: base, size: size) }
    }

    /// The heap allocations come from now.
    static var heap: Heap? {
        guard let info = bootInfo, info.pointee.keyed_count > 0 else { return single }
        return keyedHeap(Int(flexos_current_compartment))
    }

    /// Compartment `index`'s heap, under intel-mpk.
    private static func keyedHeap(_ index: Int) -> Heap? {
        guard let info = bootInfo, index < Int(info.pointee.keyed_count),
              let table = UnsafePointer<flexos_keyed_compartment>(bitPattern: UInt(info.pointee.keyed_table)) else { return nil }
        // Formatting takes the heap's lock: once per heap, not on every allocation.
        if formatted & (1 << UInt32(index)) != 0 { return Heap(formattedAt: table[index].heap_base) }
        let heap = Heap(base: table[index].heap_base, size: table[index].heap_size)
        formatted |= 1 << UInt32(index)
        return heap
    }

    /// Under intel-mpk, which compartments' heaps are formatted (bit i: compartment i).
    nonisolated(unsafe) static var formatted: UInt32 = 0

    /// The heap that handed out `pointer` (the running compartment's, unless it frees
    /// another's block, which its key then refuses).
    static func owner(of pointer: UnsafeMutableRawPointer) -> Heap? {
        guard let info = bootInfo, info.pointee.keyed_count > 0,
              let table = UnsafePointer<flexos_keyed_compartment>(bitPattern: UInt(info.pointee.keyed_table)) else { return single }
        let address = UInt64(UInt(bitPattern: pointer))
        for index in 0..<Int(info.pointee.keyed_count) where address >= table[index].heap_base && address - table[index].heap_base < table[index].heap_size {
            return keyedHeap(index)
        }
        return nil
    }

    /// Bytes allocated and not yet freed (block headers included).
    public static var bytesInUse: UInt { heap?.bytesInUse ?? 0 }

    /// The heap's size: what a library that must not run out (and trap) budgets against.
    public static var capacity: UInt { heap?.capacity ?? 0 }
}

@_cdecl("posix_memalign")
public func posixMemalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ alignment: Int, _ size: Int) -> Int32 {
    guard let pointer = PrivateHeap.heap?.allocate(byteCount: size, alignment: alignment) else { return 12 } // ENOMEM
    result.pointee = pointer
    return 0
}

/// free(3): Support/support.c forwards to it (Swift may not define `free` itself).
@_cdecl("flexos_private_free")
public func privateFree(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    PrivateHeap.owner(of: pointer)?.free(pointer)
}
