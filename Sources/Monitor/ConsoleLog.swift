import Synchronization

/// The console output of one image set, kept by the daemon: per compartment, bounded,
/// and followable while the image set runs.
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
        var bytes = 0
        var closed = false
        var followers: [Int: AsyncStream<Chunk>.Continuation] = [:]
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
        let followers = state.withLock { state -> [AsyncStream<Chunk>.Continuation] in
            if state.firstOutputAt == nil { state.firstOutputAt = now }
            state.chunks.append(chunk)
            state.bytes += chunk.text.utf8.count
            while state.bytes > ConsoleLog.capacity, state.chunks.count > 1 {
                state.bytes -= state.chunks.removeFirst().text.utf8.count
            }
            return Array(state.followers.values)
        }
        for follower in followers { follower.yield(chunk) }
    }

    /// What is kept so far.
    public var chunks: [Chunk] { state.withLock { $0.chunks } }

    /// CLOCK_MONOTONIC nanoseconds of the first output, if there was any.
    public var firstOutputAt: UInt64? { state.withLock { $0.firstOutputAt } }

    /// What is kept so far, then everything appended until the log is closed.
    public func follow() -> AsyncStream<Chunk> {
        AsyncStream { continuation in
            let (past, closed, id) = state.withLock { state -> ([Chunk], Bool, Int) in
                let id = state.nextFollower
                state.nextFollower += 1
                if !state.closed { state.followers[id] = continuation }
                return (state.chunks, state.closed, id)
            }
            for chunk in past { continuation.yield(chunk) }
            if closed { continuation.finish() }
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.followers.removeValue(forKey: id) }
            }
        }
    }

    /// Ends every follow: the image set has ended.
    public func close() {
        let followers = state.withLock { state -> [AsyncStream<Chunk>.Continuation] in
            state.closed = true
            defer { state.followers.removeAll() }
            return Array(state.followers.values)
        }
        for follower in followers { follower.finish() }
    }
}
