import Dispatch

/// Runs `body` on Swift's concurrency runtime and blocks the calling thread until it ends.
///
/// flexosd and flexosctl keep synchronous root commands and call this from the commands
/// that need async code: an async root command would start the concurrency runtime for
/// every invocation, about 2 ms of start-up here, also for those that never use it.
public func waitForAsync(_ body: @escaping @Sendable () async throws -> Void) throws {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var failure: (any Error)?
    Task {
        do { try await body() } catch { failure = error }
        done.signal()
    }
    done.wait()
    if let failure { throw failure }
}
