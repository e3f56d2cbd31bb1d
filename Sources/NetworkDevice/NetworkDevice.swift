import CFlexOSABI
import CURing
import ControlProtocol
import Glibc
import GuestImage
import GuestMachine
import KVM
import Synchronization

/// The stream device for TCP (flexos_abi.h, "The network device"): the monitor's side.
///
/// It owns the device's memory (mapped into the one VM that holds the network library),
/// the listening sockets and one io_uring. `run()` is its loop, on a thread of its own:
/// accepts, receives straight into the guest's receive rings and sends from its transmit
/// rings, all through the ring, with no thread per connection. Every value the guest
/// writes is checked before use; a wrong one ends the loop with a `DeviceViolation`.
public final class NetworkDevice: @unchecked Sendable {
    public static let connections = Int(FLEXOS_NET_CONNECTIONS)
    public static let ringBytes = UInt64(FLEXOS_NET_RING_BYTES)
    public static let guestAddress = DeviceKind.network.window.lowerBound
    /// Accepted connections that may wait for a free slot before more are turned away.
    static let backlog = 1024
    public static let bytes = DeviceKind.network.bytes

    /// Connections that neither send nor receive for this long are closed; 0: never.
    public let idleTimeout: UInt64
    /// The same in whole seconds, as the guest's boot info carries it.
    let idleTimeoutSeconds: UInt32
    /// Received bytes that count as progress on their own, without a reply.
    static let activeReceiveBytes: UInt64 = 1024
    /// How often the loop looks for idle connections (when idleTimeout is set).
    static let idleCheckNanoseconds: UInt64 = 1_000_000_000

    public let memory: GuestMemory
    public let listeners: [Listener]
    public let statistics = NetworkStatistics()
    private let ring: OpaquePointer
    /// Signalled by the guest's kick (its doorbell, or the kick hypercall) and by `stop()`.
    let kickEvent: EventNotifier
    private let stopping = Atomic<Bool>(false)
    /// The monitor's own view of each slot: what it has published and what it has in flight.
    private var connections = [Connection](repeating: Connection(), count: NetworkDevice.connections)
    /// The slots that hold a connection, so that the loop looks at those and not at all
    /// ten thousand; `activePosition[slot]` is the slot's index in it.
    private var active: [Int] = []
    private var activePosition = [Int](repeating: -1, count: NetworkDevice.connections)
    /// Slots with no connection, the lowest last (taken first: the guest's lists stay short).
    private var freeSlots = Array((0..<NetworkDevice.connections).reversed())
    /// Accepted connections waiting for a free slot.
    private var waiting: [(fd: Int32, listener: Int)] = []
    private var kickBuffer: UInt64 = 0
    /// Set when the loop published something the guest may be waiting for.
    private var published = false

    struct Connection {
        var fd: Int32 = -1
        var rxHead: UInt64 = 0
        var txTail: UInt64 = 0
        var receiving = false
        var sending = false
        var sendLength = 0
        /// The peer sent its FIN (or its receive failed): nothing more to receive.
        var receiveEnded = false
        /// The peer is gone: nothing more goes out either.
        var peerGone = false
        var shutDown = false
        /// When the connection last made progress (monotonic nanoseconds): a reply went out,
        /// or another `activeReceiveBytes` came in.
        var lastActive: UInt64 = 0
        /// Bytes received since `lastActive`.
        var receivedSinceActive: UInt64 = 0
    }

    /// Listens on `addresses` and sets up the device's memory and ring. Nothing is left
    /// open when it throws.
    public init(name: String, listen addresses: [ListenAddress], idleTimeout seconds: Double = 0)
        throws(NetworkDeviceError)
    {
        idleTimeout = seconds > 0 ? UInt64(min(seconds, 1e9) * 1e9) : 0
        idleTimeoutSeconds = UInt32(min(max(seconds, 0), Double(UInt32.max)))
        NetworkDevice.allowDescriptorsForEveryConnection()
        do { memory = try GuestMemory(name: "flexos:\(name):net", size: NetworkDevice.bytes) } catch {
            throw .memoryFailed("\(error)")
        }
        do { kickEvent = try EventNotifier() } catch { throw .memoryFailed("eventfd: \(error)") }
        var opened: [Listener] = []
        for address in addresses {
            do { opened.append(try Listener(address)) } catch {
                opened.forEach { $0.stop() }
                throw error
            }
        }
        var code: Int32 = 0
        guard let ring = curing_create(UInt32(2 * NetworkDevice.connections + 64), &code) else {
            opened.forEach { $0.stop() }
            throw .ioUringFailed(errno: code)
        }
        self.ring = ring
        listeners = opened
        let header = self.header
        header.pointee.magic = FLEXOS_NET_MAGIC
        header.pointee.connections = FLEXOS_NET_CONNECTIONS
        header.pointee.ring_bytes = UInt32(FLEXOS_NET_RING_BYTES)
    }

    deinit { curing_destroy(ring) }

    /// Open files this process wants: a device holds a socket per connection and per
    /// waiting client, far more than the usual limit of 1024 (a daemon may run several).
    static let wantedDescriptors: rlim_t = 65536

    /// Raises this process's limit of open files to `wantedDescriptors` where it may (root
    /// may raise the hard limit), else its soft limit to its hard one.
    static func allowDescriptorsForEveryConnection() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < wantedDescriptors else { return }
        var wanted = rlimit(rlim_cur: wantedDescriptors, rlim_max: max(limit.rlim_max, wantedDescriptors))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) == 0 { return }
        limit.rlim_cur = min(limit.rlim_max, wantedDescriptors)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Tells the loop there is work (the guest's kick hypercall). The loop counts kicks as
    /// it reads them, so that a doorbell's, which never reaches this process, count too.
    func kick() { kickEvent.signal() }

    /// Ends `run()`: it closes every connection and listener, then returns.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        kickEvent.signal()
    }

    /// The device loop. `wakeGuest` rouses the VM's vCPU when it sleeps; returns when
    /// stopped, or with the violation when the guest broke the device's protocol.
    public func run(wakeGuest: () -> Void) -> DeviceViolation? {
        defer { closeEverything() }
        for index in listeners.indices { arm(accept: index) }
        armKick()
        armIdleCheck()
        var polling = AdaptivePolling()
        var idleSince = monotonicNanoseconds()
        var blocked = false
        while !stopping.load(ordering: .acquiring) {
            var progressed = reapCompletions()
            do { progressed = try service() || progressed } catch { return error }
            if published { notify(wakeGuest) }
            _ = curing_submit(ring, 0)
            if progressed {
                let now = monotonicNanoseconds()
                polling.idleEnded(since: idleSince, now: now, blocked: blocked)
                (idleSince, blocked) = (now, false)
            } else if !blocked && polling.shouldPoll(since: idleSince) {
                curing_cpu_relax()
            } else {
                do { blocked = try sleep() || blocked } catch { return error }
            }
        }
        return nil
    }

    /// Says so in the header, looks once more, then blocks in io_uring until a completion
    /// (a connection, bytes, a kick); says whether it blocked.
    private func sleep() throws(DeviceViolation) -> Bool {
        curing_store32(&header.pointee.monitor_sleeping, 1)
        curing_full_fence()
        if try service() || stopping.load(ordering: .acquiring) {
            curing_store32(&header.pointee.monitor_sleeping, 0)
            return false
        }
        statistics.sleeps.add(1, ordering: .relaxed)
        _ = curing_submit(ring, 1)
        curing_store32(&header.pointee.monitor_sleeping, 0)
        return true
    }

    private func notify(_ wakeGuest: () -> Void) {
        published = false
        curing_full_fence()
        if curing_load32(&header.pointee.guest_sleeping) != 0 {
            statistics.wakes.add(1, ordering: .relaxed)
            wakeGuest()
        }
    }

    // MARK: Completions

    private enum Operation: UInt64 {
        case accept = 1
        case receive, send, kick, idleCheck
    }

    private static func userData(_ operation: Operation, _ index: Int) -> UInt64 {
        operation.rawValue << 56 | UInt64(index)
    }

    private func reapCompletions() -> Bool {
        var data: UInt64 = 0
        var result: Int32 = 0
        var flags: UInt32 = 0
        var any = false
        while curing_next_completion(ring, &data, &result, &flags) != 0 {
            any = true
            let index = Int(data & 0xFFFF_FFFF)
            switch Operation(rawValue: data >> 56) {
            case .accept: accepted(result, listener: index, rearm: curing_more(flags) == 0)
            case .receive: received(result, slot: index)
            case .send: sent(result, slot: index)
            case .kick:
                if result == 8 { statistics.kicks.add(kickBuffer, ordering: .relaxed) }
                armKick()
            case .idleCheck:
                closeIdleConnections()
                armIdleCheck()
            case nil: break
            }
        }
        return any
    }

    private func accepted(_ result: Int32, listener: Int, rearm: Bool) {
        if rearm && !stopping.load(ordering: .acquiring) { arm(accept: listener) }
        guard result >= 0 else { return }
        var one: Int32 = 1
        setsockopt(result, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        statistics.accepted.add(1, ordering: .relaxed)
        if !admit(result, listener: listener) {
            // Every slot is taken (often by connections whose close the guest has not seen
            // yet): the client waits for one, up to a backlog, then is turned away.
            guard waiting.count < NetworkDevice.backlog else {
                statistics.refused.add(1, ordering: .relaxed)
                close(result)
                return
            }
            waiting.append((result, listener))
        }
    }

    /// Gives connection `fd` a free slot and tells the guest; false when none is free.
    private func admit(_ fd: Int32, listener: Int) -> Bool {
        guard let slot = freeSlots.popLast() else { return false }
        connections[slot] = Connection(fd: fd, lastActive: monotonicNanoseconds())
        activePosition[slot] = active.count
        active.append(slot)
        let shared = slotPointer(slot)
        let generation = shared.pointee.generation &+ 1
        shared.initialize(to: flexos_net_slot())
        shared.pointee.listener = UInt32(listener)
        (memory.base + Int(flexos_net_addresses_offset(UInt32(slot)))).initializeMemory(
            as: flexos_net_addresses.self, to: flexos_net_addresses(of: fd))
        curing_store64(&shared.pointee.generation, generation)
        let head = header.pointee.accept_head
        (memory.base + Int(flexos_net_accept_queue_offset())).storeBytes(
            of: UInt32(slot), toByteOffset: Int(head % UInt64(NetworkDevice.connections)) * 4, as: UInt32.self)
        curing_store64(&header.pointee.accept_head, head &+ 1)
        published = true
        return true
    }

    private func received(_ result: Int32, slot: Int) {
        connections[slot].receiving = false
        guard connections[slot].fd >= 0, !connections[slot].shutDown else { return }
        let shared = slotPointer(slot)
        if result > 0 {
            connections[slot].rxHead &+= UInt64(result)
            // A byte now and then is not progress (slowloris): only a reply, or a kibibyte.
            connections[slot].receivedSinceActive &+= UInt64(result)
            if connections[slot].receivedSinceActive >= NetworkDevice.activeReceiveBytes {
                connections[slot].lastActive = monotonicNanoseconds()
                connections[slot].receivedSinceActive = 0
            }
            curing_store64(&shared.pointee.rx_head, connections[slot].rxHead)
            statistics.bytesReceived.add(UInt64(result), ordering: .relaxed)
        } else if result == 0 {
            // A FIN: the peer sent all it will, and still reads what it is owed.
            connections[slot].receiveEnded = true
            if !connections[slot].peerGone { curing_store32(&shared.pointee.peer_closed, FLEXOS_NET_PEER_FINISHED) }
        } else {
            markGone(slot)
        }
        published = true
    }

    private func sent(_ result: Int32, slot: Int) {
        connections[slot].sending = false
        guard connections[slot].fd >= 0 else { return }
        let shared = slotPointer(slot)
        if result > 0 && Int(result) <= connections[slot].sendLength {
            connections[slot].txTail &+= UInt64(result)
            connections[slot].lastActive = monotonicNanoseconds()
            connections[slot].receivedSinceActive = 0
            statistics.bytesSent.add(UInt64(result), ordering: .relaxed)
        } else {
            markGone(slot)
        }
        curing_store64(&shared.pointee.tx_tail, connections[slot].txTail)
        published = true
    }

    /// The peer is gone (a reset, a failed send): nothing more is received, and what the
    /// guest still writes is dropped, so it never waits for room.
    private func markGone(_ slot: Int) {
        let shared = slotPointer(slot)
        connections[slot].receiveEnded = true
        connections[slot].peerGone = true
        connections[slot].txTail = curing_load64(&shared.pointee.tx_head)
        curing_store64(&shared.pointee.tx_tail, connections[slot].txTail)
        curing_store32(&shared.pointee.peer_closed, FLEXOS_NET_PEER_GONE)
    }

    // MARK: Work the guest asked for

    /// Looks at every open slot: starts sends and receives, finishes closes. True when it
    /// started or finished anything.
    private func service() throws(DeviceViolation) -> Bool {
        var progressed = false
        try checkAcceptQueue()
        for slot in active {
            let shared = slotPointer(slot)
            // `closed` before `tx_head`: the guest writes its last reply's head, then closes
            // (release stores), so a close seen here comes with the head of every byte it
            // wrote. Read the other way round, a close that landed between the two loads
            // was taken for one with nothing to send, and the reply was lost (an error
            // reply before a protocol error's close went missing under load).
            let closed = curing_load32(&shared.pointee.closed) != 0
            let txHead = curing_load64(&shared.pointee.tx_head)
            let rxTail = curing_load64(&shared.pointee.rx_tail)
            let connection = connections[slot]
            guard
                txHead &- connection.txTail <= NetworkDevice.ringBytes
                    || connection.peerGone && txHead == connection.txTail
            else {
                throw violation(
                    slot, \.tx_head,
                    "set connection slot \(slot)'s transmit head to \(txHead), outside its ring (the monitor has sent up to \(connection.txTail); the ring holds \(NetworkDevice.ringBytes) bytes)"
                )
            }
            guard connection.rxHead &- rxTail <= NetworkDevice.ringBytes else {
                throw violation(
                    slot, \.rx_tail,
                    "set connection slot \(slot)'s receive tail to \(rxTail), outside what was received (0 to \(connection.rxHead) bytes, ring of \(NetworkDevice.ringBytes))"
                )
            }
            if closed {
                progressed =
                    finishClose(slot, pendingSend: txHead != connection.txTail && !connection.peerGone) || progressed
                continue
            }
            if !connection.sending && !connection.peerGone && txHead != connection.txTail {
                progressed = startSend(slot, upTo: txHead) || progressed
            }
            if !connection.receiving && !connection.receiveEnded
                && connection.rxHead &- rxTail < NetworkDevice.ringBytes
            {
                progressed =
                    startReceive(slot, free: NetworkDevice.ringBytes - (connection.rxHead &- rxTail)) || progressed
            }
        }
        return progressed
    }

    /// The guest's accept tail may trail the head by at most a queue's length.
    private func checkAcceptQueue() throws(DeviceViolation) {
        let tail = curing_load64(&header.pointee.accept_tail)
        let head = header.pointee.accept_head
        guard head &- tail <= UInt64(NetworkDevice.connections) else {
            throw DeviceViolation(
                description:
                    "the guest set the network device's accept tail to \(tail), outside the queue (head \(head), \(NetworkDevice.connections) entries)",
                address: NetworkDevice.guestAddress + UInt64(MemoryLayout<flexos_net_device>.offset(of: \.accept_tail)!)
            )
        }
    }

    private func startSend(_ slot: Int, upTo txHead: UInt64) -> Bool {
        let tail = connections[slot].txTail
        let offset = tail % NetworkDevice.ringBytes
        let length = min(txHead &- tail, NetworkDevice.ringBytes - offset)
        let buffer = memory.base + Int(flexos_net_rx_offset(UInt32(slot)) + NetworkDevice.ringBytes + offset)
        guard curing_send(ring, connections[slot].fd, buffer, Int(length), NetworkDevice.userData(.send, slot)) == 0
        else { return false }
        connections[slot].sending = true
        connections[slot].sendLength = Int(length)
        return true
    }

    private func startReceive(_ slot: Int, free: UInt64) -> Bool {
        let head = connections[slot].rxHead
        let offset = head % NetworkDevice.ringBytes
        let length = min(free, NetworkDevice.ringBytes - offset)
        let buffer = memory.base + Int(flexos_net_rx_offset(UInt32(slot)) + offset)
        guard curing_recv(ring, connections[slot].fd, buffer, Int(length), NetworkDevice.userData(.receive, slot)) == 0
        else { return false }
        connections[slot].receiving = true
        return true
    }

    /// The guest closed the slot: once what it wrote is sent and nothing is in flight,
    /// the socket is closed and the slot zeroed (free for the next connection).
    private func finishClose(_ slot: Int, pendingSend: Bool) -> Bool {
        if pendingSend {
            if connections[slot].sending { return false }
            return startSend(slot, upTo: curing_load64(&slotPointer(slot).pointee.tx_head))
        }
        if connections[slot].sending { return false }
        if connections[slot].receiving {
            // A pending receive completes (with 0) once the socket is shut down.
            if !connections[slot].shutDown {
                _ = shutdown(connections[slot].fd, Int32(SHUT_RDWR))
                connections[slot].shutDown = true
                return true
            }
            return false
        }
        close(connections[slot].fd)
        connections[slot] = Connection()
        release(slot)
        let shared = slotPointer(slot)
        let generation = shared.pointee.generation
        shared.initialize(to: flexos_net_slot())
        shared.pointee.generation = generation
        statistics.closed.add(1, ordering: .relaxed)
        if !waiting.isEmpty {
            let next = waiting.removeFirst()
            _ = admit(next.fd, listener: next.listener)
        }
        return true
    }

    /// Takes `slot` out of the active list (swapping the last one into its place) and frees it.
    private func release(_ slot: Int) {
        let position = activePosition[slot]
        guard position >= 0 else { return }
        let last = active.removeLast()
        if last != slot {
            active[position] = last
            activePosition[last] = position
        }
        activePosition[slot] = -1
        freeSlots.append(slot)
    }

    private func violation<T>(_ slot: Int, _ field: KeyPath<flexos_net_slot, T>, _ text: String) -> DeviceViolation {
        let offset =
            UInt64(FLEXOS_NET_SLOTS_OFFSET) + UInt64(slot * MemoryLayout<flexos_net_slot>.stride)
            + UInt64(MemoryLayout<flexos_net_slot>.offset(of: field)!)
        return DeviceViolation(description: "the guest " + text, address: NetworkDevice.guestAddress + offset)
    }

    // MARK: Set-up and tear-down

    private func arm(accept listener: Int) {
        _ = curing_multishot_accept(ring, listeners[listener].fd, NetworkDevice.userData(.accept, listener))
    }

    private func armIdleCheck() {
        guard idleTimeout > 0, !stopping.load(ordering: .acquiring) else { return }
        _ = curing_timeout(
            ring, min(NetworkDevice.idleCheckNanoseconds, idleTimeout), NetworkDevice.userData(.idleCheck, 0))
    }

    /// Closes the connections that made no progress for `idleTimeout` (Redis's `timeout`;
    /// a trickle of bytes with no reply is no progress): idle and slow clients cannot hold
    /// the slots for ever. The guest sees the peer gone and closes the slot.
    private func closeIdleConnections() {
        let now = monotonicNanoseconds()
        for slot in active where !connections[slot].peerGone && now &- connections[slot].lastActive > idleTimeout {
            markGone(slot)
            _ = shutdown(connections[slot].fd, Int32(SHUT_RDWR))
            statistics.timedOut.add(1, ordering: .relaxed)
            published = true
        }
    }

    private func armKick() {
        _ = curing_read(ring, kickEvent.fd.rawValue, &kickBuffer, 8, NetworkDevice.userData(.kick, 0))
    }

    /// Closes the listeners (new clients are refused at once) and every connection.
    private func closeEverything() {
        listeners.forEach { $0.stop() }
        waiting.forEach { close($0.fd) }
        waiting = []
        for slot in active {
            _ = shutdown(connections[slot].fd, Int32(SHUT_RDWR))
            close(connections[slot].fd)
            connections[slot] = Connection()
        }
        active = []
    }

    private var header: UnsafeMutablePointer<flexos_net_device> {
        memory.base.assumingMemoryBound(to: flexos_net_device.self)
    }

    private func slotPointer(_ slot: Int) -> UnsafeMutablePointer<flexos_net_slot> {
        (memory.base + Int(FLEXOS_NET_SLOTS_OFFSET)).assumingMemoryBound(to: flexos_net_slot.self) + slot
    }
}

/// What the device did, for `inspect` and the run report.
public final class NetworkStatistics: Sendable {
    public let accepted = Atomic<UInt64>(0)
    /// Connections turned away because every slot was taken and the backlog was full.
    public let refused = Atomic<UInt64>(0)
    public let closed = Atomic<UInt64>(0)
    /// Connections closed for staying idle longer than the idle timeout.
    public let timedOut = Atomic<UInt64>(0)
    public let bytesReceived = Atomic<UInt64>(0)
    public let bytesSent = Atomic<UInt64>(0)
    /// Kick hypercalls from the guest (each one a VM exit).
    public let kicks = Atomic<UInt64>(0)
    /// Times the device woke the guest's vCPU.
    public let wakes = Atomic<UInt64>(0)
    /// Times the loop slept in io_uring.
    public let sleeps = Atomic<UInt64>(0)
}
