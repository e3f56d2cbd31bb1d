/*
 * ckvm.h: the thin C layer under the KVM module.
 *
 * Swift cannot expand the _IO/_IOW macros of <linux/kvm.h> nor call variadic C
 * functions (ioctl, syscall, prctl), so this header re-exports the request numbers
 * the monitor uses as constants and wraps the few Linux calls Swift's Glibc module
 * does not offer (memfd_create, eventfd, naming a thread) in plain functions.
 */
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <linux/memfd.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* /dev/kvm */
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;

/* VM */
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;

/* vCPU */
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_STATS_FD = KVM_GET_STATS_FD;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_GET_XSAVE2 = KVM_GET_XSAVE2;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;

/* Capabilities checked at start-up. */
static const int CKVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY;
static const int CKVM_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT;
static const int CKVM_CAP_BINARY_STATS_FD = KVM_CAP_BINARY_STATS_FD;
static const int CKVM_CAP_NR_MEMSLOTS = KVM_CAP_NR_MEMSLOTS;
static const int CKVM_CAP_XSAVE2 = KVM_CAP_XSAVE2;
static const int CKVM_CAP_IOEVENTFD = KVM_CAP_IOEVENTFD;
static const int CKVM_CAP_IRQFD = KVM_CAP_IRQFD;
static const int CKVM_CAP_SPLIT_IRQCHIP = KVM_CAP_SPLIT_IRQCHIP;
static const int CKVM_CAP_HALT_POLL = KVM_CAP_HALT_POLL;

/* ioctl(2) with one pointer or integer argument. */
static inline int ckvm_ioctl(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

/* KVM_SET_GSI_ROUTING with one route: `gsi` raises the MSI (address, data). struct
 * kvm_irq_routing ends in a flexible array, which Swift cannot lay out. */
static inline int ckvm_route_msi(int vm, uint32_t gsi, uint32_t address, uint32_t data) {
    struct {
        struct kvm_irq_routing header;
        struct kvm_irq_routing_entry entry;
    } routing = {0};
    routing.header.nr = 1;
    routing.entry.gsi = gsi;
    routing.entry.type = KVM_IRQ_ROUTING_MSI;
    routing.entry.u.msi.address_lo = address;
    routing.entry.u.msi.data = data;
    return ioctl(vm, KVM_SET_GSI_ROUTING, &routing);
}

/* KVM_SET_MSRS with one MSR (struct kvm_msrs ends in a flexible array). Returns the
 * number of MSRs set: 1, or 0 when KVM refused the value, or -1. */
static inline int ckvm_set_msr(int vcpu, uint32_t index, uint64_t value) {
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entry;
    } msrs = {0};
    msrs.header.nmsrs = 1;
    msrs.entry.index = index;
    msrs.entry.data = value;
    return ioctl(vcpu, KVM_SET_MSRS, &msrs);
}

/* memfd_create(2) with MFD_CLOEXEC, called through syscall(2) so no feature macro is needed. */
static inline int ckvm_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
}

/* eventfd(2), close-on-exec and non-blocking. */
static inline int ckvm_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* Names the calling thread (at most 15 bytes are kept). */
static inline void ckvm_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

/* Gives the calling thread alone the file-system identity of another user (fsuid,
 * fsgid, supplementary groups), so that the files it opens are checked against that
 * user's permissions. Raw system calls: glibc's setgroups would change every thread.
 * Returns 0, or -1 when the identity could not be taken (no CAP_SETUID/CAP_SETGID). */
static inline int ckvm_take_file_identity(uid_t uid, gid_t gid, const gid_t *groups, size_t count) {
    if (syscall(SYS_setgroups, count, groups) != 0) return -1;
    syscall(SYS_setfsgid, gid);
    syscall(SYS_setfsuid, uid);
    /* Both calls return the previous value: asking again tells whether they took. */
    if ((gid_t)syscall(SYS_setfsgid, (gid_t)-1) != gid || (uid_t)syscall(SYS_setfsuid, (uid_t)-1) != uid) return -1;
    return 0;
}

/* poll with a timeout in nanoseconds (NULL: none). glibc declares ppoll only under
 * _GNU_SOURCE, which Swift's Glibc module is not built with. */
static inline int ckvm_ppoll(struct pollfd *fds, unsigned long count, const struct timespec *timeout) {
    return (int)syscall(SYS_ppoll, fds, count, timeout, NULL, 0);
}

/* The time-stamp counter, which FlexOS guests read to time their gate calls. */
static inline uint64_t ckvm_rdtsc(void) { return __builtin_ia32_rdtsc(); }

/* The MMIO member of struct kvm_run's exit union. */
struct ckvm_mmio_exit {
    uint64_t phys_addr;
    uint64_t data;
    uint32_t len;
    uint8_t is_write;
};

static inline struct ckvm_mmio_exit ckvm_run_mmio(const struct kvm_run *run) {
    struct ckvm_mmio_exit e = {0};
    e.phys_addr = run->mmio.phys_addr;
    for (int i = 0; i < 8; i++) e.data |= (uint64_t)run->mmio.data[i] << (8 * i);
    e.len = run->mmio.len;
    e.is_write = run->mmio.is_write;
    return e;
}

static inline uint64_t ckvm_run_hardware_exit_reason(const struct kvm_run *run) {
    return run->hw.hardware_exit_reason;
}

static inline uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) {
    return run->internal.suberror;
}

static inline uint32_t ckvm_run_fail_entry_reason(const struct kvm_run *run) {
    return (uint32_t)run->fail_entry.hardware_entry_failure_reason;
}

#endif
