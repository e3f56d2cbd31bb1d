import Dispatch

/// The end of a run an engine watches from a thread of its own (QEMU's process, a libvirt
/// domain): that thread signals it once; `wait` waits for it, ending the run itself when a
/// timeout passes first.
package final class RunEndSignal: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let signalled = Locked(false)

    package init() {}

    /// Whether the run has ended.
    package var hasEnded: Bool { signalled.withLock { $0 } }

    /// Called once, by the thread that saw the run end.
    package func signal() {
        signalled.withLock { $0 = true }
        semaphore.signal()
    }

    /// Waits for the end; after `timeout` seconds calls `end` (which must make the run end)
    /// and waits on. Says whether the timeout ended it.
    package func wait(timeout: Double?, orEnd end: () -> Void) -> Bool {
        var timedOut = false
        if let timeout, semaphore.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = !hasEnded
            end()
            semaphore.wait()
        } else if timeout == nil {
            semaphore.wait()
        }
        semaphore.signal()  // a later wait returns at once
        return timedOut
    }
}

extension RunEnd {
    /// An engine that killed its run on request finds no word from the guest: the run was stopped.
    package func stopped(ifAsked reason: String?, timedOut: Bool) -> RunEnd {
        guard !timedOut, case .failed = self, let reason else { return self }
        return .stopped(reason: reason)
    }
}
