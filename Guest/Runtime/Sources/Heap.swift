import CFlexOSGuest

/// A heap over one region of memory: first fit over a free list kept in address order,
/// so that a free merges the block with its free neighbours and memory is reused.
///
/// All of the heap's state lives in a header at the start of its region, so the same
/// code serves a compartment's private heap and the shared heap that every VM of an image
/// set maps at the same address; a spin lock in the header serialises the VMs.
///
/// A block is [size | flags][cookie ^ address] then the payload. Under the hardening
/// heap-checks (HeapChecks.swift) a block also records its allocation site and the size
/// asked for, a canary follows the payload, and freed memory is poisoned: every byte of a
/// free block past its header and below the high-water mark holds the poison.
struct Heap {
    /// The header at the start of the region.
    fileprivate struct Header {
        var lock: UInt32
        var ready: UInt32
        var freeList: UInt
        var start: UInt
        var end: UInt
        var bytesInUse: UInt
        /// Nonzero when the heap checks its blocks (heap-checks).
        var checks: UInt
        /// The end of the highest block ever handed out: memory above it was never used
        /// (and is not poisoned).
        var highWater: UInt
    }

    static let cookie: UInt = 0xF1E0_5EA5_0000_0000
    static let usedBit: UInt = 1

    private let header: UnsafeMutablePointer<Header>

    /// The heap already formatted at `base`.
    init(formattedAt base: UInt64) {
        header = UnsafeMutablePointer(bitPattern: UInt(base))!
    }

    /// A heap over `size` bytes at `base`, checking its blocks when `checked`. The first
    /// user to take the lock formats it.
    init(base: UInt64, size: UInt64, checked: Bool = false) {
        header = UnsafeMutablePointer(bitPattern: UInt(base))!
        withLock {
            guard header.pointee.ready == 0 else { return }
            let start = alignUp(UInt(base) + UInt(MemoryLayout<Header>.size), 16)
            let end = UInt(base + size) & ~15
            header.pointee.start = start
            header.pointee.end = end
            header.pointee.freeList = start
            header.pointee.bytesInUse = 0
            header.pointee.checks = checked ? 1 : 0
            header.pointee.highWater = start
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

    var isChecked: Bool { header.pointee.checks != 0 }

    /// The smallest block, free or used: room for a free block's links (and under
    /// heap-checks its double-free marker) and a payload.
    private var minimumBlock: UInt { isChecked ? 64 : 32 }

    /// Bytes before the payload: the block's two words, and under heap-checks two more.
    private var headerSize: UInt { isChecked ? HeapChecks.headerSize : 16 }

    /// `byteCount` bytes aligned to `alignment` (a power of two), or nil when the heap is full.
    /// `site` is the code that asked, recorded under heap-checks.
    func allocate(byteCount: Int, alignment: Int, site: UInt = 0) -> UnsafeMutableRawPointer? {
        let alignment = max(UInt(alignment), 16), headerSize = self.headerSize
        let requested = UInt(max(byteCount, 1))
        let need = max(alignUp(requested + (isChecked ? HeapChecks.canaryBytes : 0), 16) + headerSize, minimumBlock)
        return withLock { () -> UnsafeMutableRawPointer? in
            var previous: UInt = 0
            var block = header.pointee.freeList
            while block != 0 {
                let size = Heap.word(block, 0), next = Heap.word(block, 1)
                var payload = alignUp(block + headerSize, alignment)
                while payload - headerSize != block && payload - headerSize - block < minimumBlock { payload += alignment }
                let front = payload - headerSize - block
                if front + need <= size {
                    let allocated = carve(block: block, size: size, next: next, previous: previous, front: front, need: need)
                    if isChecked {
                        HeapChecks.prepare(block: block + front, size: allocated, requested: requested, site: site, poisonedBelow: header.pointee.highWater)
                        header.pointee.highWater = max(header.pointee.highWater, block + front + allocated)
                    }
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
        let block = UInt(bitPattern: pointer) - headerSize
        withLock {
            let size = Heap.word(block, 0)
            guard block >= header.pointee.start, block < header.pointee.end,
                  size & Heap.usedBit != 0, Heap.word(block, 1) == Heap.cookie ^ block
            else {
                if isChecked { HeapChecks.reportBadFree(block: block, in: header.pointee.start..<header.pointee.end) }
                panic("free of a pointer that is not an allocated block (a double free or a stray pointer)")
            }
            let length = size & ~Heap.usedBit
            if isChecked { HeapChecks.retire(block: block, size: length) }
            header.pointee.bytesInUse -= length
            insertFree(block, size: length)
        }
    }

    /// Splits free block `block` into [front gap][allocated `need`][tail] and relinks.
    /// Returns the allocated block's size (the tail joins it when too small to stand alone).
    private func carve(block: UInt, size: UInt, next: UInt, previous: UInt, front: UInt, need: UInt) -> UInt {
        var allocated = need
        var remainder = next
        let allocatedStart = block + front
        let tailSize = size - front - need
        if tailSize >= minimumBlock {
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
        return allocated
    }

    /// Links free block `block` in address order, merging it with free neighbours (under
    /// heap-checks, the header a merge absorbs is poisoned like the rest).
    private func insertFree(_ block: UInt, size: UInt) {
        var previous: UInt = 0
        var next = header.pointee.freeList
        while next != 0 && next < block {
            previous = next
            next = Heap.word(next, 1)
        }
        var start = block, length = size
        if next != 0 && block + size == next {
            let absorbed = next
            length += Heap.word(absorbed, 0)
            next = Heap.word(absorbed, 1)
            if isChecked { HeapChecks.poison(absorbed, count: HeapChecks.headerSize) }
        }
        if previous != 0 && previous + Heap.word(previous, 0) == block {
            start = previous
            length += Heap.word(previous, 0)
            if isChecked { HeapChecks.poison(block, count: HeapChecks.headerSize) }
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

    static func word(_ block: UInt, _ index: Int) -> UInt {
        UnsafePointer<UInt>(bitPattern: block)![index]
    }

    static func setWord(_ block: UInt, _ index: Int, _ value: UInt) {
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
        guard let info = bootInfo, info.pointee.keyed_count == 0 else { return }
        single = Heap(base: base, size: size, checked: info.pointee.heap_checks != 0)
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
        let heap = Heap(base: table[index].heap_base, size: table[index].heap_size, checked: table[index].heap_checks != 0)
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
    guard let heap = PrivateHeap.heap else { return 12 }  // ENOMEM
    guard let pointer = heap.allocate(byteCount: size, alignment: alignment, site: heap.isChecked ? flexos_caller_outside_runtime() : 0) else { return 12 }
    result.pointee = pointer
    return 0
}

/// free(3): Support/support.c forwards to it (Swift may not define `free` itself).
@_cdecl("flexos_private_free")
public func privateFree(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    PrivateHeap.owner(of: pointer)?.free(pointer)
}
