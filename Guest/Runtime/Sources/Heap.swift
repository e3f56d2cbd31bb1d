import CFlexOSGuest

/// A heap over one region of memory, with segregated free lists: a free block goes onto
/// the list of its size (one exact size per list up to `exactLimit` bytes, then four lists
/// per power of two), and an allocation takes the head of the first non-empty list whose
/// blocks all fit, splitting off what it does not need: O(1) in the number of blocks, which
/// a first fit over one address-ordered list was not (after a large free, each small
/// allocation walked every fragment before it: 340 SETs a second).
///
/// Frees do not merge neighbours. When no list can serve an allocation, every free block
/// is sorted by address (a merge sort of their links, which needs no memory), neighbours
/// are merged, and the lists are filled again: O(n log n), only when memory runs short.
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
/// A block is [size | flags][cookie ^ address] then the payload; a free block's second
/// word links it to the next on its list. Under the hardening heap-checks
/// (HeapChecks.swift) a block also records its allocation site and the size asked for, a
/// canary follows the payload, and freed memory is poisoned: every byte of a free block
/// past its header and below the high-water mark holds the poison.
struct Heap {
    /// The header at the start of the region.
    fileprivate struct Header {
        var lock: UInt32
        var ready: UInt32
        var bytesInUse: UInt
        /// Nonzero when the heap checks its blocks (heap-checks).
        var checks: UInt
        /// The end of the highest block ever handed out: memory above it was never used
        /// (and is not poisoned).
        var highWater: UInt
        /// Blocks put on a list since the last merge: a merge can help only if some were.
        var unmerged: UInt
        /// The smallest block `canAllocate` last found no room for (0: none), and the bytes
        /// freed since: until enough is freed to make a difference, the answer stands
        /// without another merge.
        var refusedBlock: UInt
        var freedSinceRefusal: UInt
        /// The first free block of each list (see `list(for:)`).
        var lists: (Lists, Lists, Lists)
    }

    fileprivate typealias Lists = (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                   UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                   UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt,
                                   UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt)
    /// Lists 1 to 63 hold blocks of exactly 16 * i bytes; from list 64 on, four per power
    /// of two from 1 KiB: list 64 + 4 * (log2(size) - 10) + the next two bits of the size.
    static let exactLimit: UInt = 63 * 16
    static let listCount = 192

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
            header.pointee.bytesInUse = 0
            header.pointee.checks = checked ? 1 : 0
            header.pointee.highWater = start
            header.pointee.unmerged = 0
            header.pointee.refusedBlock = 0
            header.pointee.freedSinceRefusal = 0
            for index in 0..<Heap.listCount { setHead(index, 0) }
            push(start, size: end - start)
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

    /// The block an allocation of `requested` bytes (16-aligned) takes, its header included.
    func blockSize(for requested: UInt) -> UInt {
        max(alignUp(requested + (isChecked ? HeapChecks.canaryBytes : 0), 16) + headerSize, minimumBlock)
    }

    /// `byteCount` bytes aligned to `alignment` (a power of two), or nil when the heap is full.
    /// `site` is the code that asked, recorded under heap-checks.
    func allocate(byteCount: Int, alignment: Int, site: UInt = 0) -> UnsafeMutableRawPointer? {
        let alignment = max(UInt(alignment), 16)
        let requested = UInt(max(byteCount, 1))
        let need = blockSize(for: requested)
        // A block this large holds `need` bytes at any alignment, with room for a front gap.
        let (search, overflow) = alignment == 16 ? (need, false) : need.addingReportingOverflow(alignment + minimumBlock)
        guard !overflow, search <= capacity else { return nil }
        return withLock { () -> UnsafeMutableRawPointer? in
            if let block = take(search) { return carve(block, need: need, alignment: alignment, requested: requested, site: site) }
            guard header.pointee.unmerged > 0 else { return nil }
            merge()
            guard let block = take(search) else { return nil }
            return carve(block, need: need, alignment: alignment, requested: requested, site: site)
        }
    }

    /// Whether an allocation of `byteCount` bytes, and then one of `then` bytes (0: none)
    /// while the first lives, would succeed now: free blocks that large exist (after merging
    /// neighbours, as a failing allocation would). Free bytes alone do not say it: they may
    /// lie in pieces between live blocks. A refusal of the first is remembered until a 64th
    /// of the heap (or the size asked for) has been freed, so that commands refused one
    /// after the other do not each merge: it may say no for a while after room appeared,
    /// never yes without room.
    func canAllocate(byteCount: Int, then second: Int = 0) -> Bool {
        let need = blockSize(for: UInt(min(max(byteCount, 1), Int.max / 2)))
        let next = second > 0 ? blockSize(for: UInt(min(second, Int.max / 2))) : 0
        return withLock {
            let refused = header.pointee.refusedBlock
            if refused != 0 && need >= refused && header.pointee.freedSinceRefusal < min(need, capacity / 64) { return false }
            if freeBlocksHold(need, next) { return true }
            if header.pointee.unmerged > 0 {
                merge()
                if freeBlocksHold(need, next) { return true }
            }
            if largestFree() < need {
                header.pointee.refusedBlock = need
                header.pointee.freedSinceRefusal = 0
            }
            return false
        }
    }

    /// Whether blocks of `first` and `second` bytes can be taken at once: both from the
    /// largest free block, or one from each of the two largest.
    private func freeBlocksHold(_ first: UInt, _ second: UInt) -> Bool {
        let (largest, next) = twoLargestFree()
        let (both, overflow) = first.addingReportingOverflow(second)
        return !overflow && largest >= both || largest >= max(first, second) && next >= min(first, second)
    }

    /// The largest block an allocation could get now, after merging neighbours: what INFO
    /// reports, as Redis reports its fragmentation.
    var largestFreeBlock: UInt {
        withLock {
            if header.pointee.unmerged > 0 { merge() }
            return largestFree()
        }
    }

    // MARK: Lists

    private func head(_ index: Int) -> UInt {
        withUnsafePointer(to: &header.pointee.lists) { UnsafeRawPointer($0).load(fromByteOffset: index * 8, as: UInt.self) }
    }

    private func setHead(_ index: Int, _ block: UInt) {
        withUnsafeMutablePointer(to: &header.pointee.lists) { UnsafeMutableRawPointer($0).storeBytes(of: block, toByteOffset: index * 8, as: UInt.self) }
    }

    /// The list a free block of `size` bytes (a multiple of 16) goes on.
    private static func list(for size: UInt) -> Int {
        if size <= exactLimit { return Int(size / 16) }
        let log2 = UInt.bitWidth - 1 - size.leadingZeroBitCount
        return min(64 + 4 * (log2 - 10) + Int((size >> (log2 - 2)) & 3), listCount - 1)
    }

    /// The first list whose every block holds `size` bytes (the list of `size` itself when
    /// `size` is the least size it takes).
    private static func firstListFitting(_ size: UInt) -> Int {
        let index = list(for: size)
        if size <= exactLimit || index == listCount - 1 { return index }
        let log2 = UInt.bitWidth - 1 - size.leadingZeroBitCount
        let least = (4 + ((size >> (log2 - 2)) & 3)) << (log2 - 2)
        return size == least ? index : index + 1
    }

    /// Puts free block `block` of `size` bytes on its list.
    private func push(_ block: UInt, size: UInt) {
        let index = Heap.list(for: size)
        Heap.setWord(block, 0, size)
        Heap.setWord(block, 1, head(index))
        setHead(index, block)
        header.pointee.unmerged &+= 1
    }

    /// A free block of at least `size` bytes, taken off its list; nil when none is at hand.
    /// The head of a list whose blocks all fit when there is one; else the last list
    /// (blocks of any larger size) and the list of `size` itself are searched through.
    private func take(_ size: UInt) -> UInt? {
        for index in Heap.firstListFitting(size)..<(Heap.listCount - 1) {
            let block = checked(head(index))
            guard block != 0 else { continue }
            setHead(index, checked(Heap.word(block, 1)))
            return block
        }
        if let block = firstFit(size, in: Heap.listCount - 1) { return block }
        let own = Heap.list(for: size)
        return own == Heap.firstListFitting(size) ? nil : firstFit(size, in: own)
    }

    /// The first block of list `index` that holds `size` bytes, taken off it.
    private func firstFit(_ size: UInt, in index: Int) -> UInt? {
        var previous: UInt = 0
        var block = checked(head(index))
        while block != 0 {
            let next = checked(Heap.word(block, 1))
            if checked(size: Heap.word(block, 0), of: block) >= size {
                if previous == 0 { setHead(index, next) } else { Heap.setWord(previous, 1, next) }
                return block
            }
            previous = block
            block = next
        }
        return nil
    }

    /// The largest free block's size.
    private func largestFree() -> UInt { twoLargestFree().largest }

    /// The sizes of the two largest free blocks (0 where there are fewer).
    private func twoLargestFree() -> (largest: UInt, next: UInt) {
        var largest: UInt = 0, next: UInt = 0, found = 0
        for index in stride(from: Heap.listCount - 1, through: 1, by: -1) {
            var block = checked(head(index))
            while block != 0 {
                let size = checked(size: Heap.word(block, 0), of: block)
                if size > largest { (largest, next) = (size, largest) } else if size > next { next = size }
                found += 1
                block = checked(Heap.word(block, 1))
            }
            // Every block on a lower list is smaller than every block on this one.
            if found >= 2 { break }
        }
        return (largest, next)
    }

    /// Hands out `need` bytes of free block `block` with the payload aligned; what is left
    /// before and after goes back on the lists.
    private func carve(_ block: UInt, need: UInt, alignment: UInt, requested: UInt, site: UInt) -> UnsafeMutableRawPointer? {
        let size = checked(size: Heap.word(block, 0), of: block), headerSize = self.headerSize
        var payload = alignUp(block + headerSize, alignment)
        while payload - headerSize != block && payload - headerSize - block < minimumBlock { payload += alignment }
        let front = payload - headerSize - block
        if front > 0 { push(block, size: front) }
        var allocated = need
        let tailSize = size - front - need
        if tailSize >= minimumBlock { push(block + front + need, size: tailSize) } else { allocated += tailSize }
        return handOut(block: block + front, size: allocated, requested: requested, site: site, payload: payload)
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

    /// Returns the block at `pointer` to the heap.
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
            header.pointee.freedSinceRefusal &+= length
            push(block, size: length)
        }
    }

    // MARK: Merging

    /// Takes every free block off the lists, merges neighbours and puts the merged blocks
    /// back (under heap-checks, each header a merge absorbs is poisoned like the rest).
    private func merge() {
        var chain: UInt = 0
        for index in 1..<Heap.listCount {
            var block = checked(head(index))
            setHead(index, 0)
            while block != 0 {
                let next = checked(Heap.word(block, 1))
                Heap.setWord(block, 1, chain)
                chain = block
                block = next
            }
        }
        var block = sortedByAddress(chain), run: UInt = 0, runSize: UInt = 0
        while block != 0 {
            let next = checked(Heap.word(block, 1)), size = checked(size: Heap.word(block, 0), of: block)
            if run != 0 && run + runSize == block {
                runSize += size
                if isChecked { HeapChecks.poison(block, count: HeapChecks.headerSize) }
            } else {
                if run != 0 { push(run, size: runSize) }
                run = block
                runSize = size
            }
            block = next
        }
        if run != 0 { push(run, size: runSize) }
        header.pointee.unmerged = 0
    }

    /// The chain of free blocks from `head` (linked by their second word), sorted by address.
    private func sortedByAddress(_ head: UInt) -> UInt {
        guard head != 0, Heap.word(head, 1) != 0 else { return head }
        var slow = head, fast = checked(Heap.word(head, 1))
        while fast != 0, Heap.word(fast, 1) != 0 {
            slow = checked(Heap.word(slow, 1))
            fast = checked(Heap.word(checked(Heap.word(fast, 1)), 1))
        }
        let second = checked(Heap.word(slow, 1))
        Heap.setWord(slow, 1, 0)
        var a = sortedByAddress(head), b = sortedByAddress(second)
        var first: UInt = 0, tail: UInt = 0
        while a != 0 && b != 0 {
            let next: UInt
            if a < b { next = a; a = checked(Heap.word(a, 1)) } else { next = b; b = checked(Heap.word(b, 1)) }
            if tail == 0 { first = next } else { Heap.setWord(tail, 1, next) }
            tail = next
        }
        let rest = a != 0 ? a : b
        if tail == 0 { first = rest } else { Heap.setWord(tail, 1, rest) }
        return first
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

    /// What an allocation of `byteCount` bytes takes from the heap, its block's header (and
    /// under heap-checks its canary) included: what a library charges before it allocates.
    public static func blockBytes(for byteCount: Int) -> Int {
        guard let heap else { return byteCount }
        return Int(heap.blockSize(for: UInt(min(max(byteCount, 1), Int.max / 2))))
    }

    /// Whether `byteCount` bytes can be allocated now in one piece, and then `then` more in
    /// another while the first lives (see Heap.canAllocate): what a library checks before it
    /// grows a large table or array.
    public static func canAllocate(_ byteCount: Int, then second: Int = 0) -> Bool {
        heap?.canAllocate(byteCount: byteCount, then: second) ?? false
    }

    /// The largest piece of free memory (see Heap.largestFreeBlock).
    public static var largestFreeBlock: UInt { heap?.largestFreeBlock ?? 0 }

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
    guard let pointer = heap.allocate(byteCount: size, alignment: alignment, site: heap.isChecked ? flexos_caller_outside_runtime() : 0) else {
        // Only the Swift runtime allocates here, and it traps on a failed allocation with
        // no word of why: say what was asked and what the heap had.
        var text = PanicText("the private heap cannot allocate ")
        text.append(decimal: UInt(max(size, 0)))
        text.append(" bytes: ")
        text.append(decimal: heap.bytesInUse)
        text.append(" in use, largest free piece ")
        text.append(decimal: heap.largestFreeBlock)
        text.panic()
    }
    result.pointee = pointer
    return 0
}

/// free(3): Support/support.c forwards to it (Swift may not define `free` itself).
@_cdecl("flexos_private_free")
public func privateFree(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    PrivateHeap.owner(of: pointer)?.free(pointer)
}
