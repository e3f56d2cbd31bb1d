import CFlexOSGuest

/// A heap over one region of memory: first fit over a free list kept in address order,
/// so that a free merges the block with its free neighbours and memory is reused. Small
/// blocks (up to `binnedLimit` bytes) are freed into bins of one exact size each and
/// handed out again from there, in O(1) with no walk of the list; the bins are merged into
/// the list only when the list alone cannot serve an allocation.
///
/// All of the heap's state lives in a header at the start of its region, so the same
/// code serves a compartment's private heap and the shared heap that every VM of an image
/// set maps at the same address; a spin lock in the header serialises the VMs.
///
/// The bounds of the region come from the caller (the boot info), never from the header:
/// every compartment can write the shared heap's header and blocks, so every link the heap
/// follows is checked against those bounds, and a forged one panics instead of steering an
/// allocation (or a write of the heap's own) into the compartment's private memory.
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
        var bytesInUse: UInt
        /// Nonzero when the heap checks its blocks (heap-checks).
        var checks: UInt
        /// The end of the highest block ever handed out: memory above it was never used
        /// (and is not poisoned).
        var highWater: UInt
        /// Bytes in the bins (free, not in the list).
        var binnedBytes: UInt
        /// The first free block of each bin: bin i holds blocks of 16 * i bytes.
        var bins: Bins
    }

    fileprivate typealias Bins = (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                  UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                  UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                  UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt)
    /// The largest block a bin holds.
    static let binnedLimit: UInt = 63 * 16

    static let cookie: UInt = 0xF1E0_5EA5_0000_0000
    static let usedBit: UInt = 1

    private let header: UnsafeMutablePointer<Header>
    /// The addresses the heap hands out, from the caller.
    let start: UInt
    let end: UInt

    /// A heap over `size` bytes at `base`, checking its blocks when `checked`. The first
    /// user formats it (under the lock; a formatted heap takes no lock here).
    init(base: UInt64, size: UInt64, checked: Bool = false) {
        header = UnsafeMutablePointer(bitPattern: UInt(base))!
        start = alignUp(UInt(base) + UInt(MemoryLayout<Header>.size), 16)
        end = UInt(base + size) & ~15
        guard flexos_load32_acquire(&header.pointee.ready) == 0 else { return }
        withLock {
            guard header.pointee.ready == 0 else { return }
            header.pointee.freeList = start
            header.pointee.bytesInUse = 0
            header.pointee.checks = checked ? 1 : 0
            header.pointee.highWater = start
            header.pointee.binnedBytes = 0
            for bin in 0..<64 { setBin(bin, 0) }
            Heap.setWord(start, 0, end - start)
            Heap.setWord(start, 1, 0)
            flexos_store32_release(&header.pointee.ready, 1)
        }
    }

    /// `block`, a link read from the heap's memory, if it is one the heap could have made.
    private func checked(_ block: UInt) -> UInt {
        guard block == 0 || (block >= start && block < end && block & 15 == 0 && end - block >= 16) else { corrupted() }
        return block
    }

    /// `size`, read from the header of `block`, if the block ends inside the heap.
    private func checked(size: UInt, of block: UInt) -> UInt {
        guard size <= end - block else { corrupted() }
        return size
    }

    private func corrupted() -> Never {
        panic("a heap's links point outside the heap: its memory was overwritten (the shared heap, by another compartment?)")
    }

    /// Bytes handed out and not yet freed, headers included.
    var bytesInUse: UInt { header.pointee.bytesInUse }

    /// Bytes the heap manages in all.
    var capacity: UInt { end - start }

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
            if alignment == 16, let block = takeBinned(need) {
                return handOut(block: block, size: need, requested: requested, site: site, payload: block + headerSize)
            }
            if let payload = firstFit(need: need, alignment: alignment, requested: requested, site: site) { return payload }
            guard header.pointee.binnedBytes > 0 else { return nil }
            releaseBins()
            return firstFit(need: need, alignment: alignment, requested: requested, site: site)
        }
    }

    /// The first block of the list that holds `need` bytes with the payload aligned, carved.
    private func firstFit(need: UInt, alignment: UInt, requested: UInt, site: UInt) -> UnsafeMutableRawPointer? {
        let headerSize = self.headerSize
        var previous: UInt = 0
        var block = checked(header.pointee.freeList)
        while block != 0 {
            let size = checked(size: Heap.word(block, 0), of: block), next = checked(Heap.word(block, 1))
            var payload = alignUp(block + headerSize, alignment)
            while payload - headerSize != block && payload - headerSize - block < minimumBlock { payload += alignment }
            let front = payload - headerSize - block
            if front + need <= size {
                let allocated = carve(block: block, size: size, next: next, previous: previous, front: front, need: need)
                return handOut(block: block + front, size: allocated, requested: requested, site: site, payload: payload)
            }
            previous = block
            block = next
        }
        return nil
    }

    /// Marks `block` used, under heap-checks prepares it, and returns its payload.
    private func handOut(block: UInt, size: UInt, requested: UInt, site: UInt, payload: UInt) -> UnsafeMutableRawPointer? {
        Heap.setWord(block, 0, size | Heap.usedBit)
        Heap.setWord(block, 1, Heap.cookie ^ block)
        header.pointee.bytesInUse += size
        if isChecked {
            HeapChecks.prepare(block: block, size: size, requested: requested, site: site, poisonedBelow: header.pointee.highWater)
            header.pointee.highWater = max(header.pointee.highWater, block + size)
        }
        return UnsafeMutableRawPointer(bitPattern: payload)
    }

    // MARK: Bins

    private func bin(_ index: Int) -> UInt {
        withUnsafePointer(to: &header.pointee.bins) { UnsafeRawPointer($0).load(fromByteOffset: index * 8, as: UInt.self) }
    }

    private func setBin(_ index: Int, _ block: UInt) {
        withUnsafeMutablePointer(to: &header.pointee.bins) { UnsafeMutableRawPointer($0).storeBytes(of: block, toByteOffset: index * 8, as: UInt.self) }
    }

    /// A free block of exactly `size` bytes from its bin, unlinked; nil when the bin is empty.
    private func takeBinned(_ size: UInt) -> UInt? {
        guard size <= Heap.binnedLimit else { return nil }
        let index = Int(size / 16), block = checked(bin(index))
        guard block != 0 else { return nil }
        guard Heap.word(block, 0) == size else { corrupted() }
        setBin(index, checked(Heap.word(block, 1)))
        header.pointee.binnedBytes -= size
        return block
    }

    /// Puts free block `block` of `size` bytes in its bin, if a bin holds that size.
    private func bin(_ block: UInt, size: UInt) -> Bool {
        guard size <= Heap.binnedLimit else { return false }
        let index = Int(size / 16)
        Heap.setWord(block, 0, size)
        Heap.setWord(block, 1, bin(index))
        setBin(index, block)
        header.pointee.binnedBytes += size
        return true
    }

    /// Moves every binned block into the list, merging neighbours: what an allocation the
    /// list cannot serve tries before it fails.
    private func releaseBins() {
        for index in 0..<64 {
            var block = checked(bin(index))
            setBin(index, 0)
            while block != 0 {
                let next = checked(Heap.word(block, 1))
                insertFree(block, size: checked(size: Heap.word(block, 0), of: block))
                block = next
            }
        }
        header.pointee.binnedBytes = 0
    }

    /// Returns the block at `pointer` to the heap, merging it with free neighbours.
    func free(_ pointer: UnsafeMutableRawPointer) {
        let block = UInt(bitPattern: pointer) - headerSize
        withLock {
            let size = Heap.word(block, 0)
            guard block >= start, block < end,
                  size & Heap.usedBit != 0, Heap.word(block, 1) == Heap.cookie ^ block
            else {
                if isChecked { HeapChecks.reportBadFree(block: block, in: start..<end) }
                panic("free of a pointer that is not an allocated block (a double free or a stray pointer)")
            }
            let length = checked(size: size & ~Heap.usedBit, of: block)
            if isChecked { HeapChecks.retire(block: block, size: length) }
            header.pointee.bytesInUse -= length
            if !bin(block, size: length) { insertFree(block, size: length) }
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
        return allocated
    }

    /// Links free block `block` in address order, merging it with free neighbours (under
    /// heap-checks, the header a merge absorbs is poisoned like the rest).
    private func insertFree(_ block: UInt, size: UInt) {
        var previous: UInt = 0
        var next = checked(header.pointee.freeList)
        while next != 0 && next < block {
            previous = next
            next = checked(Heap.word(next, 1))
        }
        var start = block, length = size
        if next != 0 && block + size == next {
            let absorbed = next
            length += checked(size: Heap.word(absorbed, 0), of: absorbed)
            next = checked(Heap.word(absorbed, 1))
            if isChecked { HeapChecks.poison(absorbed, count: HeapChecks.headerSize) }
        }
        if previous != 0 && previous + Heap.word(previous, 0) == block {
            start = previous
            length += checked(size: Heap.word(previous, 0), of: previous)
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
/// allocations come from the running compartment's heap (PKRU says which), formatted on
/// its first use by that compartment itself (no other may write it). A heap region starts
/// with the compartment's runtime state (CompartmentRuntime); the heap follows it.
public enum PrivateHeap {
    /// The heap region of the running compartment: the VM's, or under intel-mpk its own.
    static var region: (base: UInt64, size: UInt64, checked: Bool)? { region(of: Compartment.current) }

    /// Compartment `index`'s heap region under intel-mpk (from the keyed table in the
    /// read-only boot-info page); the VM's elsewhere.
    static func region(of index: Int) -> (base: UInt64, size: UInt64, checked: Bool)? {
        let info = bootInfo
        guard info.pointee.keyed_count > 0 else { return (info.pointee.heap_base, info.pointee.heap_size, info.pointee.heap_checks != 0) }
        guard index >= 0, index < Int(info.pointee.keyed_count), index < Int(FLEXOS_MAX_COMPARTMENTS) else { return nil }
        let entry = keyedTable[index]
        return (entry.heap_base, entry.heap_size, entry.heap_checks != 0)
    }

    /// The keyed table, at its fixed place in the boot-info page.
    private static var keyedTable: UnsafePointer<flexos_keyed_compartment> {
        UnsafePointer(bitPattern: UInt(FLEXOS_BOOT_INFO_ADDRESS + FLEXOS_BOOT_KEYED_TABLE_OFFSET))!
    }

    private static var runtimeBytes: UInt64 { UInt64(MemoryLayout<flexos_compartment_runtime>.size) }

    /// The heap allocations come from now.
    static var heap: Heap? { region.flatMap(heap(in:)) }

    private static func heap(in region: (base: UInt64, size: UInt64, checked: Bool)) -> Heap? {
        guard region.size > runtimeBytes else { return nil }
        return Heap(base: region.base + runtimeBytes, size: region.size - runtimeBytes, checked: region.checked)
    }

    /// The heap that handed out `pointer` (the running compartment's, unless it frees
    /// another's block, which its key then refuses).
    static func owner(of pointer: UnsafeMutableRawPointer) -> Heap? {
        guard bootInfo.pointee.keyed_count > 0 else { return heap }
        let address = UInt64(UInt(bitPattern: pointer))
        for index in 0..<Int(bootInfo.pointee.keyed_count) {
            guard let region = region(of: index) else { break }
            if address >= region.base && address - region.base < region.size { return heap(in: region) }
        }
        return nil
    }

    /// Bytes allocated and not yet freed (block headers included).
    public static var bytesInUse: UInt { heap?.bytesInUse ?? 0 }

    /// The heap's size: what a library that must not run out (and trap) budgets against.
    public static var capacity: UInt { heap?.capacity ?? 0 }
}

/// The running compartment's runtime state (flexos_abi.h, struct flexos_compartment_runtime),
/// at the start of its heap region: under intel-mpk, where only its own key reaches.
enum CompartmentRuntime {
    static var current: UnsafeMutablePointer<flexos_compartment_runtime> {
        guard let region = PrivateHeap.region else { panic("PKRU opens no compartment's key: not code a gate entered") }
        return UnsafeMutablePointer(bitPattern: UInt(region.base))!
    }
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
