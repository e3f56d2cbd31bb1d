import CConfinement
import CKVM
import Glibc
import GuestMachine
import KVM

/// The seccomp filter a vCPU thread runs under once its VM is set up (Solo5's and
/// Firecracker's habit): KVM_RUN and the register (and PKRU) reads of fault analysis, memory and
/// futex calls, eventfd and console writes, signals for kicks, thread exit. Nothing
/// that opens, creates or executes. A forbidden call ends that thread; the run control
/// sees the report on the thread's eventfd and stops the image set with it.
enum VCPUConfinement {
    /// What the run loop, the hypercall handlers and the fault analyzer call.
    static let allowedSystemCalls = [
        // Exits, hypercalls, sleeping and waking.
        "read", "write", "pread64", "poll", "ppoll", "futex", "sched_yield", "nanosleep", "clock_nanosleep",
        "clock_gettime", "gettimeofday", "getpid", "gettid", "tgkill", "rt_sigprocmask", "rt_sigreturn",
        // The allocator (Swift, libdw when a fault is analysed).
        "mmap", "munmap", "mremap", "madvise", "brk", "mprotect",
        // The end of the thread.
        "exit"
    ]

    /// The ioctls of the run loop (KVM_RUN) and of fault analysis (registers, and the
    /// XSAVE state that holds PKRU under intel-mpk).
    static let allowedIoctls: [UInt] = [CKVM_RUN, CKVM_GET_REGS, CKVM_GET_SREGS, CKVM_GET_XSAVE, CKVM_GET_XSAVE2]

    /// Confines the calling thread; a forbidden call is reported to `report`.
    static func apply(reportingTo report: Int32) throws(LaunchError) {
        var names = allowedSystemCalls.map { strdup($0) }
        defer { names.forEach { free($0) } }
        let result = names.withUnsafeMutableBufferPointer { names in
            names.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: names.count) { pointer in
                allowedIoctls.map { UInt($0) }.withUnsafeBufferPointer { ioctls in
                    confinement_apply(pointer, names.count, ioctls.baseAddress, ioctls.count, report)
                }
            }
        }
        if result != 0 { throw LaunchError.confinementFailed(Errno(rawValue: -result)) }
    }

    /// "openat", for system call number `number`.
    static func name(ofSystemCall number: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        confinement_syscall_name(number, &buffer, buffer.count)
        return String(cString: buffer)
    }
}
