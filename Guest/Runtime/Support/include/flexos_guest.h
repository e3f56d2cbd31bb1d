/*
 * flexos_guest.h: the few things the guest runtime needs that Swift cannot say.
 *
 * Embedded Swift has no inline assembly, no volatile stores and no PAUSE or RDTSC,
 * so these one-line helpers are written in C and inlined into the Swift runtime by
 * the Clang importer. Everything about the ABI itself comes from flexos_abi.h.
 */
#ifndef FLEXOS_GUEST_H
#define FLEXOS_GUEST_H

#include <flexos_abi.h>
#include <stdint.h>

/* The boot info: a read-only page at a fixed address. The runtime never keeps a pointer
 * to it (or anything read from it) in its data: under intel-mpk that data carries key 0,
 * which every compartment's key opens, so a compartment could steer another. */
static inline const struct flexos_boot_info *flexos_boot(void) {
    return (const struct flexos_boot_info *)FLEXOS_BOOT_INFO_ADDRESS;
}

/* Under intel-mpk: the compartment running now, read from PKRU. Only the gates write PKRU
 * (the build refuses WRPKRU anywhere else, and a gate checks the value it wrote), so no
 * compartment can pass for another. Compartment i's PKRU opens keys 0 and i + 1 only;
 * FLEXOS_MAX_COMPARTMENTS when PKRU opens no compartment's key. */
static inline uint32_t flexos_keyed_running_compartment(void) {
    uint32_t pkru, unused;
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xee" /* rdpkru */ : "=a"(pkru), "=d"(unused) : "c"(0));
    for (uint32_t key = 1; key < 16 && key <= FLEXOS_MAX_COMPARTMENTS; key++) {
        if (((pkru >> (2 * key)) & 3) == 0) return key - 1;
    }
    return FLEXOS_MAX_COMPARTMENTS;
}

/* The first return address on the call stack outside the runtime's code: who asked the
 * runtime for memory (the allocation site heap-checks records), by frame pointers. 0 when
 * the walk finds none. */
uintptr_t flexos_caller_outside_runtime(void);

/* The list of accesses in progress that exclusivity-checks keeps, in a compartment's runtime state. */
static inline uintptr_t *flexos_access_head(struct flexos_compartment_runtime *runtime) { return (uintptr_t *)&runtime->access_head; }

/* Issues hypercall `number` with the argument block at `block`. On KVM: one store to the
 * hypercall window, which the monitor sees as a KVM_EXIT_MMIO. Under the QEMU engine:
 * `syscall`, which the ring-0 shim serves. The compiler barriers make the block's contents
 * reach memory before the call and be re-read after it. */
static inline void flexos_hypercall(uint64_t number, void *block) {
    __asm__ __volatile__("" ::: "memory");
    if (flexos_boot()->hypercall_mode == FLEXOS_HYPERCALL_MODE_SYSCALL) {
        __asm__ __volatile__("syscall" : "+D"(number), "+S"(block) : : "rcx", "r11", "memory");
    } else {
        *(volatile uint64_t *)(FLEXOS_HYPERCALL_WINDOW + 8 * number) = (uint64_t)block;
    }
    __asm__ __volatile__("" ::: "memory");
}

/* Rings a doorbell: one 8-byte store to an address the monitor wired to an eventfd
 * (KVM_IOEVENTFD). The kernel signals it; the guest goes on with no exit to the monitor. */
static inline void flexos_ring_doorbell(uint64_t address) {
    __asm__ __volatile__("" ::: "memory");
    *(volatile uint64_t *)address = 1;
}

/* Sleeps in the kernel (flexos_abi.h, "Sleeping in the kernel"): calls the sleep entry
 * with the timeout in EDI. The call's push must not land in the red zone of the caller. */
static inline void flexos_sleep_in_kernel(uint64_t entry, uint32_t timeout_nanoseconds) {
    __asm__ __volatile__("sub $128, %%rsp\n\tcall *%0\n\tadd $128, %%rsp"
                         : "+r"(entry), "+D"(timeout_nanoseconds)
                         :
                         : "rax", "rcx", "rdx", "memory", "cc");
}

/* Spin-wait hint. */
static inline void flexos_cpu_relax(void) { __builtin_ia32_pause(); }

/* The time-stamp counter (RDTSC runs in ring 3). */
static inline uint64_t flexos_cycles(void) { return __builtin_ia32_rdtsc(); }

/* Loads and stores of memory another VM (or the monitor) writes. */
static inline uint64_t flexos_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void flexos_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t flexos_load32_acquire(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void flexos_store32_release(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t flexos_exchange32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }

/* A full fence: orders a store before a later load (the sleep/wake handshake). */
static inline void flexos_full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* A reference to an exported function of some library, passed across gates as one
 * integer (a callback). Only its owner's export table can turn it into a call. */
typedef struct flexos_export {
    uint64_t index;
} flexos_export;

#endif
