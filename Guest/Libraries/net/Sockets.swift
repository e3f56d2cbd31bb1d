import CFlexOSGuest
import FlexOS

/// A connection as other libraries name it: the slot in the low 16 bits, the slot's
/// generation above, so a connection closed and replaced on the same slot is never
/// confused with its successor.
struct ConnectionID {
    let slot: Int
    let generation: UInt64

    init(slot: Int, generation: UInt64) {
        self.slot = slot
        self.generation = generation
    }

    init?(_ value: UInt64) {
        slot = Int(value & 0xFFFF)
        generation = (value >> 16) & 0xFFFF_FFFF
        guard slot < Device.connections, generation != 0, Sockets.generations[slot] == generation else { return nil }
    }

    var value: UInt64 { (generation & 0xFFFF_FFFF) << 16 | UInt64(slot) }
}

/// Event flags poll reports, in the top 16 bits of each event word.
enum EventFlag {
    static let readable: UInt64 = 1 << 48
    static let writable: UInt64 = 2 << 48
    static let hangUp: UInt64 = 4 << 48
}

/// The library's state: which slots are open, under which generation, and which wait
/// for room to send.
enum Sockets {
    /// Per slot: the generation it was accepted under (its low 32 bits), 0 when not open.
    nonisolated(unsafe) static var generations = [UInt64](repeating: 0, count: Device.connections)
    nonisolated(unsafe) static var wantsWrite = [Bool](repeating: false, count: Device.connections)
    nonisolated(unsafe) static var open: [Int] = []
    /// Per slot: its index in `open`, -1 when not open.
    nonisolated(unsafe) static var openPosition = [Int](repeating: -1, count: Device.connections)
    /// Where the next `collect` starts in `open`: with more ready connections than a poll
    /// reports, each gets its turn.
    nonisolated(unsafe) static var nextToCollect = 0
    /// How long poll polls before it sleeps, learned from the gaps between events.
    nonisolated(unsafe) static var polling = AdaptiveSpin(maximumMicroseconds: 1000)

    static func acceptNew() {
        Device.takeAccepted { slot in
            guard generations[slot] == 0 else { return }
            let generation = flexos_load_acquire(&Device.slot(slot).pointee.generation) & 0xFFFF_FFFF
            generations[slot] = generation == 0 ? 1 : generation
            wantsWrite[slot] = false
            openPosition[slot] = open.count
            open.append(slot)
        }
    }

    /// Writes up to `capacity` ready events; returns how many.
    static func collect(_ events: UnsafeMutablePointer<UInt64>, capacity: Int) -> Int {
        var count = 0
        let start = open.isEmpty ? 0 : nextToCollect % open.count
        for position in 0..<open.count where count < capacity {
            let slot = open[(start + position) % open.count]
            nextToCollect = start + position + 1
            let shared = Device.slot(slot)
            let peerClosed = flexos_load32_acquire(&shared.pointee.peer_closed) != 0
            let received = flexos_load_acquire(&shared.pointee.rx_head) != shared.pointee.rx_tail
            var flags: UInt64 = 0
            if received { flags |= EventFlag.readable }
            if peerClosed { flags |= EventFlag.hangUp | (received ? 0 : EventFlag.readable) }
            if wantsWrite[slot] && shared.pointee.tx_head &- flexos_load_acquire(&shared.pointee.tx_tail) < Device.ringBytes {
                flags |= EventFlag.writable
                wantsWrite[slot] = false
            }
            guard flags != 0 else { continue }
            events[count] = flags | ConnectionID(slot: slot, generation: generations[slot]).value
            count += 1
        }
        return count
    }

    static func remove(_ slot: Int) {
        generations[slot] = 0
        wantsWrite[slot] = false
        let position = openPosition[slot]
        guard position >= 0 else { return }
        let last = open.removeLast()
        if last != slot {
            open[position] = last
            openPosition[last] = position
        }
        openPosition[slot] = -1
    }
}

/// Waits until a connection is readable (bytes, or the peer closed) or writable again
/// after a short send, or `timeoutMilliseconds` pass (0: no limit; negative: look once,
/// do not wait). Returns the number of events written to `events`: each a connection id
/// with EventFlag bits on top.
@_cdecl("net_poll")
public func poll(_ events: UnsafeMutablePointer<UInt64>, _ capacity: Int, _ timeoutMilliseconds: Int) -> Int {
    guard capacity > 0, SharedMemory.holds(events, count: capacity * 8) else { return -2 }
    let started = flexos_cycles()
    var slept = false
    let deadline = timeoutMilliseconds <= 0 ? UInt64.max : Clock.milliseconds + UInt64(timeoutMilliseconds)
    while true {
        Sockets.acceptNew()
        let ready = Sockets.collect(events, capacity: capacity)
        if ready > 0 || timeoutMilliseconds < 0 {
            Sockets.polling.idleEnded(since: started, slept: slept)
            return ready
        }
        let now = Clock.milliseconds
        if now >= deadline {
            Sockets.polling.idleEnded(since: started, slept: slept)
            return 0
        }
        if !slept && Sockets.polling.shouldPoll(since: started) { flexos_cpu_relax(); continue }
        // Say so, look once more, then sleep until the device wakes this VM.
        let header = Device.header
        flexos_store32_release(&header.pointee.guest_sleeping, 1)
        flexos_full_fence()
        Sockets.acceptNew()
        let late = Sockets.collect(events, capacity: capacity)
        if late == 0 {
            Hypercalls.wait(timeout: deadline == UInt64.max ? 0 : (deadline - now) * 1_000_000)
            slept = true
        }
        flexos_store32_release(&header.pointee.guest_sleeping, 0)
        if late > 0 {
            Sockets.polling.idleEnded(since: started, slept: slept)
            return late
        }
    }
}

/// A request of `receive` or `send`: four words, the connection, a buffer's address, its
/// length, and the result this library writes. Batched, so that a compartment boundary is
/// crossed once per turn of the caller's event loop, not once per connection.
struct Request {
    let words: UnsafeMutablePointer<UInt64>

    var connection: UInt64 { words[0] }
    var buffer: UnsafeMutablePointer<UInt8>? { UnsafeMutablePointer(bitPattern: UInt(words[1])) }
    var length: Int { Int(truncatingIfNeeded: words[2]) }

    func answer(_ result: Int) { words[3] = UInt64(bitPattern: Int64(result)) }

    /// Its open connection and a buffer in shared memory, or nil when either is not so.
    var checked: (id: ConnectionID, buffer: UnsafeMutablePointer<UInt8>)? {
        guard let id = ConnectionID(connection), let buffer, length >= 0, SharedMemory.holds(buffer, count: length) else { return nil }
        return (id, buffer)
    }
}

/// Answers each of the `count` requests at `requests` with `body`'s result (-2 for one whose
/// connection or buffer is not valid); -2 when the requests do not lie in shared memory.
private func answerEach(_ requests: UnsafeMutablePointer<UInt64>, _ count: Int,
                        _ body: (Request, ConnectionID, UnsafeMutablePointer<UInt8>) -> Int) -> Int {
    guard count >= 0, count <= Device.connections * 4, SharedMemory.holds(requests, count: count * 32) else { return -2 }
    for index in 0..<count {
        let request = Request(words: requests + 4 * index)
        request.answer(request.checked.map { body(request, $0.id, $0.buffer) } ?? -2)
    }
    Device.kickIfSleeping()
    return count
}

/// For each request, copies up to its length of received bytes into its buffer. Each
/// result: the count; 0 when the peer closed and every byte was read; -1 when nothing is
/// there yet; -2 for a connection that is not open (or a buffer outside shared memory).
@_cdecl("net_receive")
public func receive(_ requests: UnsafeMutablePointer<UInt64>, _ count: Int) -> Int {
    answerEach(requests, count, receiveOne)
}

private func receiveOne(_ request: Request, _ id: ConnectionID, _ buffer: UnsafeMutablePointer<UInt8>) -> Int {
    let shared = Device.slot(id.slot)
    let peerClosed = flexos_load32_acquire(&shared.pointee.peer_closed) != 0
    let head = flexos_load_acquire(&shared.pointee.rx_head), tail = shared.pointee.rx_tail
    guard head != tail else { return peerClosed ? 0 : -1 }
    let count = Int(min(head &- tail, UInt64(request.length)))
    copyOut(Device.receiveRing(id.slot), from: tail, count: count, to: buffer)
    flexos_store_release(&shared.pointee.rx_tail, tail &+ UInt64(count))
    return count
}

/// For each request, queues up to its length of bytes for its connection. Each result:
/// how many it took (less than asked when the ring is full: poll then reports the
/// connection writable), or -2 when the connection is not open or its peer is gone (a peer
/// that only sent its FIN still gets what is sent).
@_cdecl("net_send")
public func send(_ requests: UnsafeMutablePointer<UInt64>, _ count: Int) -> Int {
    answerEach(requests, count, sendOne)
}

private func sendOne(_ request: Request, _ id: ConnectionID, _ bytes: UnsafeMutablePointer<UInt8>) -> Int {
    let shared = Device.slot(id.slot)
    // A peer that only finished sending still reads its replies; one that is gone does not.
    guard flexos_load32_acquire(&shared.pointee.peer_closed) != FLEXOS_NET_PEER_GONE else { return -2 }
    let head = shared.pointee.tx_head
    let room = Device.ringBytes - (head &- flexos_load_acquire(&shared.pointee.tx_tail))
    let taken = Int(min(room, UInt64(request.length)))
    copyIn(bytes, count: taken, to: Device.transmitRing(id.slot), at: head)
    flexos_store_release(&shared.pointee.tx_head, head &+ UInt64(taken))
    if taken < request.length { Sockets.wantsWrite[id.slot] = true }
    return taken
}

/// For each request, copies its connection's two ends (struct flexos_net_addresses'
/// `peer`, then `local`: 40 bytes) into its buffer. Each result: the bytes copied, 0 when the
/// buffer is too small, -2 when the connection is not open.
@_cdecl("net_addresses")
public func addresses(_ requests: UnsafeMutablePointer<UInt64>, _ count: Int) -> Int {
    answerEach(requests, count) { request, id, buffer in
        let size = 2 * MemoryLayout<flexos_net_address>.size
        guard request.length >= size else { return 0 }
        let slot = Device.slot(id.slot)
        // The monitor wrote them before queueing the slot, under this generation.
        guard flexos_load_acquire(&slot.pointee.generation) & 0xFFFF_FFFF == id.generation else { return -2 }
        buffer.update(from: Device.addresses(id.slot), count: size)
        return size
    }
}

/// Closes `connection` once what was sent has left; its id is dead from now on.
@_cdecl("net_close")
public func close(_ connection: UInt64) {
    guard let id = ConnectionID(connection) else { return }
    flexos_store32_release(&Device.slot(id.slot).pointee.closed, 1)
    Sockets.remove(id.slot)
    Device.kickIfSleeping()
}

/// Copies `count` bytes from a ring at counter `position` (wrapping) to `buffer`.
private func copyOut(_ ring: UnsafeMutablePointer<UInt8>, from position: UInt64, count: Int, to buffer: UnsafeMutablePointer<UInt8>) {
    let offset = Int(position % Device.ringBytes)
    let first = min(count, Int(Device.ringBytes) - offset)
    buffer.update(from: ring + offset, count: first)
    if first < count { (buffer + first).update(from: ring, count: count - first) }
}

/// Copies `count` bytes from `bytes` into a ring at counter `position` (wrapping).
private func copyIn(_ bytes: UnsafePointer<UInt8>, count: Int, to ring: UnsafeMutablePointer<UInt8>, at position: UInt64) {
    let offset = Int(position % Device.ringBytes)
    let first = min(count, Int(Device.ringBytes) - offset)
    (ring + offset).update(from: bytes, count: first)
    if first < count { ring.update(from: bytes + first, count: count - first) }
}
