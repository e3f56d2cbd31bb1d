import CKVM
import Glibc
import KVM

/// A named thread of the monitor: one drives each vCPU, one supervises each image set in
/// the daemon. `kick()` sends the signal that makes a running KVM_RUN return.
package final class MonitorThread: @unchecked Sendable {
    /// The signal sent to a vCPU thread so that a running KVM_RUN returns with EINTR.
    package static let kickSignal = SIGUSR1

    private var thread = pthread_t()

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept). A detached
    /// thread releases its resources when it ends and cannot be joined.
    package init(name: String, detached: Bool = false, body: @escaping () -> Void) throws(LaunchError) {
        MonitorThread.installKickHandler
        let box = Unmanaged.passRetained(Box(name: String(name.prefix(15)), body: body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                ckvm_set_thread_name(box.name)
                // A thread inherits its creator's signal mask, and runtime worker threads
                // (Dispatch, Swift concurrency) block most signals: unblock the kick.
                var kick = sigset_t()
                sigemptyset(&kick)
                sigaddset(&kick, MonitorThread.kickSignal)
                pthread_sigmask(SIG_UNBLOCK, &kick, nil)
                box.body()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw LaunchError.threadFailed(Errno(rawValue: result))
        }
        if detached { pthread_detach(thread) }
    }

    /// Interrupts the thread's KVM_RUN, if it is in one.
    package func kick() { pthread_kill(thread, MonitorThread.kickSignal) }

    /// Waits for the thread to end.
    package func join() { pthread_join(thread, nil) }

    private final class Box {
        package let name: String
        package let body: () -> Void
        package init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// A do-nothing handler, installed once without SA_RESTART, so the signal interrupts
    /// KVM_RUN instead of killing the process.
    private static let installKickHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(kickSignal, &action, nil)
    }()
}
