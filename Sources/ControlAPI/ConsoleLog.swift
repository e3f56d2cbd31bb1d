import Glibc
import GuestMachine
import KVM
import Monitor
import Synchronization

/// The console output of one image set, kept by the daemon: per compartment, bounded,
/// and followable while the image set runs.
///
/// Output arrives on vCPU threads, which run confined (VCPUConfinement): they only
/// store a chunk and signal each follower's eventfd. Every follower has a thread of its
/// own that hands new chunks to its AsyncStream, so resuming Swift tasks (and whatever
/// threads the concurrency runtime starts for that) never happens on a vCPU thread.
public final class ConsoleLog: ConsoleSink, @unchecked Sendable {
    /// One piece of output.
    public struct Chunk: Sendable {
        public let compartment: String
        public let text: String
    }

    /// The most bytes kept; older output is dropped first.
    public static let capacity = 1 << 20

    private struct State {
        var firstOutputAt: UInt64?
        var chunks: [Chunk] = []
        /// The sequence number of `chunks[0]`; it grows as old chunks are dropped.
        var firstSequence = 0
        var bytes = 0
        var closed = false
        var followers: [Int: EventNotifier] = [:]
        var nextFollower = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func write(_ bytes: [UInt8], compartment: String, index: Int) {
        append(Chunk(compartment: compartment, text: String(decoding: bytes, as: UTF8.self)))
    }

    /// Adds a chunk written by the monitor itself (e.g. a fault report).
    public func append(_ chunk: Chunk) {
        let now = monotonicNanoseconds()
        let followers = state.withLock { state -> [EventNotifier] in
            if state.firstOutputAt == nil { state.firstOutputAt = now }
            state.chunks.append(chunk)
            state.bytes += chunk.text.utf8.count
            while state.bytes > ConsoleLog.capacity, state.chunks.count > 1 {
                state.bytes -= state.chunks.removeFirst().text.utf8.count
                state.firstSequence += 1
            }
            return Array(state.followers.values)
        }
        for follower in followers { follower.signal() }
    }

    /// What is kept so far.
    public var chunks: [Chunk] { state.withLock { $0.chunks } }

    /// CLOCK_MONOTONIC nanoseconds of the first output, if there was any.
    public var firstOutputAt: UInt64? { state.withLock { $0.firstOutputAt } }

    /// What is kept so far, then everything appended until the log is closed.
    public func follow() -> AsyncStream<Chunk> {
        AsyncStream { continuation in
            guard let wake = try? EventNotifier() else {
                for chunk in chunks { continuation.yield(chunk) }
                continuation.finish()
                return
            }
            let id = state.withLock { state -> Int in
                defer { state.nextFollower += 1 }
                state.followers[state.nextFollower] = wake
                return state.nextFollower
            }
            let cancelled = Atomic(false)
            continuation.onTermination = { _ in
                cancelled.store(true, ordering: .releasing)
                wake.signal()
            }
            let pump = { [self] in
                pumpChunks(to: continuation, wake: wake, cancelled: cancelled)
                state.withLock { _ = $0.followers.removeValue(forKey: id) }
            }
            if (try? MonitorThread(name: "log-follow", detached: true, body: pump)) == nil { pump() }
        }
    }

    /// A follower's thread: hands over every chunk from the first kept one on, waiting on
    /// `wake` for more, until the log closes or the follower goes away.
    private func pumpChunks(
        to continuation: AsyncStream<Chunk>.Continuation, wake: EventNotifier, cancelled: borrowing Atomic<Bool>
    ) {
        var next = 0
        while !cancelled.load(ordering: .acquiring) {
            let (fresh, closed) = state.withLock { state -> ([Chunk], Bool) in
                let start = max(next, state.firstSequence)
                next = state.firstSequence + state.chunks.count
                return (Array(state.chunks[(start - state.firstSequence)...]), state.closed)
            }
            for chunk in fresh { continuation.yield(chunk) }
            if closed { break }
            var ready = pollfd(fd: wake.fd.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&ready, 1, -1)
            _ = wake.consume()
        }
        continuation.finish()
    }

    /// Ends every follow: the image set has ended.
    public func close() {
        let followers = state.withLock { state -> [EventNotifier] in
            state.closed = true
            return Array(state.followers.values)
        }
        for follower in followers { follower.signal() }
    }
}
