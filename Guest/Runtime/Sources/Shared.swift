import CFlexOSGuest

/// Memory every compartment of the image set sees at the same address: the shared heap
/// and this compartment's shared stack. Under vmept these are the only places (besides
/// `@section(".data_shared")` statics) where data handed through a gate can live.
public enum SharedMemory {
    /// The shared heap, its bounds from the boot info (its header is anyone's to write).
    static var heap: Heap? {
        guard bootInfo.pointee.shared_heap_size > 0 else { return nil }
        return Heap(base: bootInfo.pointee.shared_heap_base, size: bootInfo.pointee.shared_heap_size)
    }
    static var stackBase: UInt { UInt(bootInfo.pointee.shared_stack_base) }
    static var stackTop: UInt { stackBase + UInt(bootInfo.pointee.shared_stack_size) }
    /// How far below the top of the shared stack the next free byte is (it grows down).
    /// Runtime data, which under intel-mpk every compartment can write: it is checked on
    /// every use, so a forged value cannot place another compartment's data outside the
    /// shared stack.
    nonisolated(unsafe) static var stackUsed: UInt = 0

    /// Formats the shared heap, if no other VM has yet.
    static func attach() {
        _ = heap
    }

    /// `count` values of `T` from the shared heap, or nil when it is full.
    public static func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T>? {
        heap?.allocate(byteCount: MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)?
            .bindMemory(to: T.self, capacity: count)
    }

    /// Bytes of the shared heap allocated and not yet freed, by every compartment.
    public static var heapBytesInUse: UInt { heap?.bytesInUse ?? 0 }

    /// Bytes the shared heap manages in all: no one buffer can be larger.
    public static var heapCapacity: UInt { heap?.capacity ?? 0 }

    /// The capacity a buffer of `capacity` bytes in the shared heap grows to when it must
    /// hold `used + more`: doubling while small, then 4 MiB past what it needs, so that a
    /// large value does not ask for twice its size. Nil when no buffer that large can exist.
    public static func grownCapacity(_ capacity: Int, used: Int, more: Int) -> Int? {
        let (needed, overflow) = used.addingReportingOverflow(more)
        guard !overflow, needed <= Int(heapCapacity) else { return nil }
        var grown = max(capacity, 1)
        while grown < needed { grown = min(grown * 2, needed + (4 << 20)) }
        return grown
    }

    /// Whether `count` bytes at `pointer` lie in the shared heap: what a library checks
    /// before it touches memory another compartment handed it.
    public static func holds(_ pointer: UnsafeRawPointer, count: Int) -> Bool {
        guard let heap, count >= 0 else { return false }
        let start = UInt(bitPattern: pointer)
        let (end, overflow) = start.addingReportingOverflow(UInt(count))
        return !overflow && start >= heap.start && end <= heap.end
    }

    /// Returns memory from `allocate` to the shared heap.
    public static func deallocate<T>(_ pointer: UnsafeMutablePointer<T>) {
        heap?.free(UnsafeMutableRawPointer(pointer))
    }

    /// Runs `body` with `value` copied to the shared stack, for the duration of the call:
    /// what a stack variable whose address goes through a gate needs.
    public static func withValue<T, R>(_ value: T, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        withBuffer(of: T.self, count: 1) { buffer in
            buffer.initialize(to: value)
            return body(buffer)
        }
    }

    /// Runs `body` with a copy of `value` on the shared stack, and copies it back after:
    /// what `withUnsafeMutablePointer(to:)` does, for a pointer another compartment may
    /// use during the call (flexos-port writes it where a local's address crosses a gate).
    public static func withUnsafeMutablePointer<T, R>(to value: inout T, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        withValue(value) { shared in
            defer { value = shared.pointee }
            return body(shared)
        }
    }

    /// Runs `body` with `count` zeroed values of `T` on the shared stack.
    public static func withBuffer<T, R>(of type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        let saved = stackUsed, base = stackBase, top = stackTop
        guard saved <= top - base else { panic("the shared stack's pointer was overwritten (by another compartment?)") }
        let (size, overflow) = MemoryLayout<T>.stride.multipliedReportingOverflow(by: count)
        guard count >= 0, !overflow, UInt(size) <= top - saved - base else { panic("shared stack overflow") }
        let start = (top - saved - UInt(size)) & ~UInt(max(MemoryLayout<T>.alignment, 16) - 1)
        guard start >= base else { panic("shared stack overflow") }
        stackUsed = top - start
        let raw = UnsafeMutableRawPointer(bitPattern: start)!
        _ = memset(raw, 0, size)
        let result = body(raw.bindMemory(to: T.self, capacity: count))
        stackUsed = saved
        return result
    }
}
