/*
 * flexos_abi.h: the one place where the guest runtime and the monitor agree.
 *
 * Both sides include this header: the monitor (Sources/Monitor) through the
 * CFlexOSABI module, the Embedded Swift guest runtime (Guest/Runtime) through
 * its own module map. Everything that crosses the boundary is defined here:
 * the guest memory layout, the hypercall numbers and their argument blocks,
 * the boot-info block, the console ring and the shared gate block.
 *
 * Rules (after Solo5's hvt_abi.h):
 *  - Fields are only ever appended; a change that moves or removes one bumps
 *    FLEXOS_ABI_VERSION. The guest records the version it was built against in
 *    its `.flexos_abi` ELF section and the monitor refuses any other.
 *  - Guest pointers are plain uint64_t guest addresses. The monitor checks each
 *    one (bounds, overflow, permission) before it touches host memory.
 *  - Every struct has a fixed layout with explicit padding; no pointers, no enums
 *    as field types.
 */
#ifndef FLEXOS_ABI_H
#define FLEXOS_ABI_H

#include <stdint.h>

#define FLEXOS_ABI_VERSION 12u /* 2: gate channels carry reply_status; the gate block is laid out by page.
                                  3: the network device; the boot info carries tsc_hz and net_device.
                                  4: hypercalls by `syscall` under the QEMU engine (boot info hypercall_mode).
                                  5: heap_checks in the boot info and the keyed table; a panic may name a code address.
                                  6: each compartment's runtime state at the start of its private heap region
                                     (struct flexos_compartment_runtime, seeded by the monitor); the network
                                     device tells a peer that finished sending from one that is gone, and has
                                     10240 connection slots with 16 KiB rings.
                                  7: the QEMU engine's shim writes its console and its report to the serial
                                     ports COM1 and COM2 (were the debugcon ports 0xE9 and 0xEC)
                                  8: doorbells: a wake and the network device's kick are stores to addresses
                                     KVM signals in the kernel (boot info doorbells, net_doorbell)
                                  9: under flexosd the QEMU engine's shim forwards every hypercall to flexosd on
                                     the control port (handoff served_by_flexosd)
                                 10: sleeping in the kernel (boot info sleep_entry); the compartment state
                                     counts sleeps and doorbells rung
                                 11: the time hypercall also answers the host's wall clock (unix_nanoseconds)
                                 12: the network device writes each connection's peer and local address
                                     (struct flexos_net_addresses) */

/* ---------------------------------------------------------------------------
 * Guest memory layout. Guest-virtual addresses equal guest-physical addresses
 * for everything the guest can see (identity mapping), so a guest pointer is
 * also the address the monitor looks up in its memory slots.
 *
 *   0x0000_0000_0000  null guard page, never mapped
 *   0x0000_0000_1000  monitor area: page tables; in a memory slot, never mapped
 *                     to the guest. Its last 64 KiB (FLEXOS_TRAP_AREA_BASE) hold
 *                     the exception entry the monitor writes for KVM runs: IDT, GDT,
 *                     TSS, 32 stubs and their stack, mapped for ring 0 only,
 *                     and the sleep entry (FLEXOS_SLEEP_ENTRY), the one page of it
 *                     ring 3 may run
 *   0x0000_0020_0000  boot-info page (read-only), then the console ring
 *   0x0000_0040_0000  the image: PT_LOAD segments of the guest ELF
 *   0x0000_4000_0000  the shared area, mapped at this address in every VM of an
 *                     image set: .data_shared, the gate block, the shared
 *                     stacks, the shared heap. Within 2 GiB of the image, so code
 *                     built for the small code model reaches .data_shared.
 *   0x0000_8000_0000  the network device (struct flexos_net_device), mapped only in
 *                     the compartment that holds the library declaring it
 *   0x0000_C000_0000  hypercall window: mapped, but backed by no memory slot;
 *                     its upper half holds the doorbells (below); the page after it (FLEXOS_TRAP_REPORT_ADDRESS) is where the
 *                     exception stubs report, mapped for ring 0 only
 *   0x0001_0000_0000  compartment k's private area at BASE + k * stride:
 *                     a guard page, the stack, the heap. The stride is 1 GiB
 *                     (COMPARTMENT_AREA_STRIDE) where the compartments share a VM
 *                     (intel-mpk, whose gates carry the stack addresses), else 16 GiB
 *                     (VM_AREA_STRIDE): what a compartment may have at most
 * ------------------------------------------------------------------------- */
#define FLEXOS_PAGE_SIZE               0x1000ull
#define FLEXOS_MONITOR_AREA_BASE       0x1000ull
#define FLEXOS_MONITOR_AREA_END        0x200000ull
#define FLEXOS_BOOT_INFO_ADDRESS       0x200000ull
#define FLEXOS_CONSOLE_RING_ADDRESS    0x201000ull
#define FLEXOS_CONSOLE_RING_BYTES      0x4000ull     /* header + data, 4 pages */
#define FLEXOS_IMAGE_BASE              0x400000ull
#define FLEXOS_IMAGE_LIMIT             0x40000000ull
#define FLEXOS_HYPERCALL_WINDOW        0xC0000000ull
#define FLEXOS_COMPARTMENT_AREA_BASE   0x100000000ull
#define FLEXOS_COMPARTMENT_AREA_STRIDE 0x40000000ull    /* intel-mpk: its compartments share one VM */
#define FLEXOS_VM_AREA_STRIDE          0x400000000ull   /* a VM with one private area (vmept, fcalls) */
#define FLEXOS_SHARED_BASE             0x40000000ull
#define FLEXOS_SHARED_LIMIT            0x80000000ull
#define FLEXOS_NET_DEVICE_ADDRESS      0x80000000ull
#define FLEXOS_TRAP_AREA_BASE          0x1F0000ull
#define FLEXOS_TRAP_REPORT_ADDRESS     0xC0001000ull
#define FLEXOS_SLEEP_ENTRY             0x1FF000ull

#define FLEXOS_MAX_COMPARTMENTS        16u

/* ---------------------------------------------------------------------------
 * Doorbells. Where KVM offers KVM_IOEVENTFD, the monitor wires an 8-byte store to
 * FLEXOS_DOORBELL_WINDOW + 8 * i, in every VM of the set, to compartment i's wake
 * (an eventfd its sleeping monitor thread polls), and a store to FLEXOS_NET_DOORBELL,
 * in the VM that holds the network device, to the device's kick: the kernel signals
 * the eventfd and the guest goes on, with no exit to the monitor (2.5 us against an
 * MMIO exit's 24 us here). The boot info says whether they are wired (doorbells and
 * net_doorbell are the addresses, or 0: use FLEXOS_HYPERCALL_WAKE and
 * FLEXOS_HYPERCALL_NET_KICK). Any value rings; a store of another size is an MMIO exit
 * the monitor refuses.
 * ------------------------------------------------------------------------- */
#define FLEXOS_DOORBELL_WINDOW         (FLEXOS_HYPERCALL_WINDOW + 0x800ull)
#define FLEXOS_NET_DOORBELL            (FLEXOS_HYPERCALL_WINDOW + 0xC00ull)
_Static_assert(FLEXOS_DOORBELL_WINDOW + 8u * FLEXOS_MAX_COMPARTMENTS <= FLEXOS_NET_DOORBELL, "a doorbell per compartment");

/* ---------------------------------------------------------------------------
 * Sleeping in the kernel. Where KVM can raise an interrupt from an eventfd (KVM_IRQFD),
 * the monitor also wires each VM's wake eventfd, which its doorbell and its devices
 * signal, to an interrupt of that VM, and maps FLEXOS_SLEEP_ENTRY (`ud2; ret`) for ring 3.
 * A guest sleeps by calling it with the timeout in EDI (nanoseconds, 0: no limit; RAX,
 * RCX and RDX are clobbered): the `ud2` enters the monitor's ring-0 code, which checks
 * that it came from exactly there, arms the local APIC's timer, halts with interrupts on
 * and returns after the `ud2` once a doorbell, a device or the timer raised the
 * interrupt. The vCPU halts in the kernel, not in the monitor: no exit on either side.
 * Ring 3 runs with interrupts off, so a wake rung before the halt waits for it and is not
 * lost; a wake that finds no sleeper shows up as an early return from the next sleep.
 * The boot info's sleep_entry is FLEXOS_SLEEP_ENTRY, or 0 (then wait with
 * FLEXOS_HYPERCALL_WAIT).
 * ------------------------------------------------------------------------- */
#define FLEXOS_GATE_MAX_ARGUMENTS      6u

/* ---------------------------------------------------------------------------
 * Hypercalls. The guest stores the guest address of the call's argument block
 * (8 bytes) to FLEXOS_HYPERCALL_WINDOW + 8 * number. The window has no memory
 * slot behind it, so the store is a KVM_EXIT_MMIO; the monitor reads the block,
 * acts, writes the OUT fields and resumes the guest after the store.
 * ------------------------------------------------------------------------- */
enum flexos_hypercall {
    FLEXOS_HYPERCALL_RESERVED = 0,
    FLEXOS_HYPERCALL_CONSOLE_FLUSH = 1, /* struct flexos_hc_console_flush */
    FLEXOS_HYPERCALL_EXIT = 2,          /* struct flexos_hc_exit */
    FLEXOS_HYPERCALL_PANIC = 3,         /* struct flexos_hc_panic */
    FLEXOS_HYPERCALL_TIME = 4,          /* struct flexos_hc_time */
    FLEXOS_HYPERCALL_WAIT = 5,          /* struct flexos_hc_wait */
    FLEXOS_HYPERCALL_WAKE = 6,          /* struct flexos_hc_wake */
    FLEXOS_HYPERCALL_NET_KICK = 7,      /* struct flexos_hc_net_kick */
    FLEXOS_HYPERCALL_MAX
};

/* Drain the console ring up to its current head. */
struct flexos_hc_console_flush {
    uint64_t reserved;                  /* IN: 0 */
};

/* End the image set with an exit code. */
struct flexos_hc_exit {
    int64_t code;                       /* IN */
};

/* End the image set with a message (and where it was raised, if known). */
struct flexos_hc_panic {
    uint64_t message;                   /* IN: guest address of UTF-8 bytes */
    uint64_t message_length;            /* IN */
    uint64_t file;                      /* IN: guest address, or 0 */
    uint64_t file_length;               /* IN */
    uint64_t line;                      /* IN: 0 if unknown */
    uint64_t code_address;              /* IN: the code the panic is about (e.g. a conflicting
                                           access, an allocation site), for the monitor to name; 0 if none */
};

/* Read the host's clocks. */
struct flexos_hc_time {
    uint64_t nanoseconds;               /* OUT: CLOCK_MONOTONIC */
    uint64_t unix_nanoseconds;          /* OUT: CLOCK_REALTIME, since 1970; 0 where unknown */
};

/* Sleep until woken (FLEXOS_HYPERCALL_WAKE) or the timeout passes. A wake that
 * arrived before the wait is not lost: the wait then returns at once. */
struct flexos_hc_wait {
    uint64_t timeout_nanoseconds;       /* IN: 0 = no timeout */
    uint64_t woken;                     /* OUT: 1 if woken, 0 on timeout */
};

/* Wake the vCPU of another compartment of the same image set. */
struct flexos_hc_wake {
    uint32_t compartment;               /* IN */
    uint32_t reserved;
};

/* Tell the network device there is work (bytes to send, ring space, a close): only
 * needed while the device says it sleeps (flexos_net_device.monitor_sleeping). */
struct flexos_hc_net_kick {
    uint64_t reserved;                  /* IN: 0 */
};

/* ---------------------------------------------------------------------------
 * Boot info: one read-only page at FLEXOS_BOOT_INFO_ADDRESS. The monitor enters
 * the guest at its ELF entry point in 64-bit ring 3 with RSP at the top of the
 * compartment's stack (16-byte aligned minus 8, as after a call) and RDI =
 * FLEXOS_BOOT_INFO_ADDRESS.
 * ------------------------------------------------------------------------- */
#define FLEXOS_BOOT_MAGIC 0x544F4F42534F4C46ull /* "FLOSBOOT" */

struct flexos_boot_info {
    uint64_t magic;                     /* FLEXOS_BOOT_MAGIC */
    uint32_t abi_version;               /* FLEXOS_ABI_VERSION */
    uint32_t compartment;               /* index of the compartment this VM runs */
    uint32_t compartment_count;
    uint32_t app_compartment;           /* the compartment that runs main */
    uint64_t heap_base;
    uint64_t heap_size;
    uint64_t stack_base;                /* lowest address of the stack */
    uint64_t stack_size;
    uint64_t console_ring;              /* struct flexos_console_ring */
    uint64_t shared_heap_base;          /* shared by every compartment */
    uint64_t shared_heap_size;
    uint64_t shared_stack_base;         /* this compartment's shared stack */
    uint64_t shared_stack_size;
    uint64_t gate_block;                /* struct flexos_gate_block */
    uint64_t random_seed[4];            /* from the host's getrandom(2) */
    uint64_t tsc_hz;                    /* time-stamp counter ticks per second: time without an exit */
    uint64_t net_device;                /* struct flexos_net_device in this VM, or 0 */
    uint32_t hypercall_mode;            /* FLEXOS_HYPERCALL_MODE_* */
    uint32_t heap_checks;               /* 1: the heap guards its blocks (hardening heap-checks) */
    /* intel-mpk: the compartments sharing this VM, each with its own stack, heap and key
     * (struct flexos_keyed_compartment[keyed_count] at keyed_table, in the boot-info page);
     * 0 otherwise. keyed_application is the one that runs main. */
    uint32_t keyed_count;
    uint32_t keyed_application;
    uint64_t keyed_table;
    /* Seconds after which the network device closes an idle client connection (0: never):
     * what CONFIG GET timeout answers. */
    uint32_t client_idle_timeout;
    uint32_t reserved2;
    /* Doorbells (see above): FLEXOS_DOORBELL_WINDOW, or 0 where the monitor did not wire
     * them (then wake with FLEXOS_HYPERCALL_WAKE); in the VM that holds the network
     * device, FLEXOS_NET_DOORBELL, or 0 (then kick with FLEXOS_HYPERCALL_NET_KICK). */
    uint64_t doorbells;
    uint64_t net_doorbell;
    uint64_t sleep_entry;               /* FLEXOS_SLEEP_ENTRY, or 0 (see above) */
};

struct flexos_keyed_compartment {
    uint64_t heap_base;
    uint64_t heap_size;
    uint64_t stack_base;
    uint64_t stack_size;
    uint32_t key;                       /* its protection key (1 + its index) */
    uint32_t pkru;                      /* PKRU while it runs */
    uint32_t heap_checks;               /* 1: its heap guards its blocks (hardening heap-checks) */
    uint32_t reserved;
};
#define FLEXOS_BOOT_KEYED_TABLE_OFFSET 0x800ull /* from FLEXOS_BOOT_INFO_ADDRESS */

/* The runtime's state of one compartment, at the start of its private heap region
 * (heap_base of the boot info, or of its entry in the keyed table under intel-mpk), where
 * only that compartment's key reaches: no other compartment of the VM can read or steer
 * it. The monitor fills random_seed from the host's getrandom(2) before the first entry;
 * the runtime keeps the rest, and its heap begins after this block. */
struct flexos_compartment_runtime {
    uint64_t random_state[4];           /* IN: the seed; then the generator's state */
    uint64_t access_head;               /* exclusivity-checks: the accesses in progress */
    uint64_t reserved[3];
};

/* How the guest makes a hypercall. On KVM, a store to the hypercall window (an MMIO exit);
 * under the QEMU engine, `syscall` with RDI = number and RSI = the argument block's
 * address, which the ring-0 shim (Guest/Ring0) serves. */
#define FLEXOS_HYPERCALL_MODE_MMIO    0u
#define FLEXOS_HYPERCALL_MODE_SYSCALL 1u

/* ---------------------------------------------------------------------------
 * Console ring. The guest appends bytes at head and issues
 * FLEXOS_HYPERCALL_CONSOLE_FLUSH at each newline or when the ring is full; the
 * monitor consumes from tail to head. Both counters only grow; the byte for
 * counter value c is data[c % size]. The monitor also drains what is left
 * when a guest exits or faults, so no output is lost.
 * ------------------------------------------------------------------------- */
struct flexos_console_ring {
    uint64_t head;                      /* written by the guest */
    uint64_t tail;                      /* written by the monitor */
    uint64_t size;                      /* capacity of data[], set by the monitor */
    uint64_t reserved;
    uint8_t data[];
};

/* ---------------------------------------------------------------------------
 * Gates between compartments (mechanism vmept). One channel per ordered pair
 * (caller, callee): one compartment has one thread, so it has at most one call
 * outstanding to a given callee, and a channel has one writer per side.
 *
 * A call: the caller writes export_index and args, then increments
 * request_sequence (release). The callee sees request_sequence !=
 * reply_sequence, dispatches through its export table, writes result, then sets
 * reply_sequence = request_sequence (release). Whoever publishes something a
 * sleeping compartment waits for wakes it (FLEXOS_HYPERCALL_WAKE).
 * ------------------------------------------------------------------------- */
#define FLEXOS_GATE_MAGIC 0x4554414753534F4Cull /* "LOSSGATE" */

struct flexos_gate_channel {
    uint64_t request_sequence;          /* written by the caller */
    uint32_t export_index;
    uint32_t reserved;
    uint64_t args[FLEXOS_GATE_MAX_ARGUMENTS];
    uint64_t reply_sequence;            /* written by the callee */
    uint64_t result;
    uint64_t reply_status;              /* FLEXOS_GATE_OK, or why the callee refused */
    uint64_t padding[5];
};

/* reply_status: a callee never trusts a request. One it cannot serve (an export it
 * does not own) is answered with a refusal, and the caller, whose request it was,
 * ends with a report; the callee keeps running. */
#define FLEXOS_GATE_OK              0ull
#define FLEXOS_GATE_REFUSED_EXPORT  1ull

/* Per-compartment state. The first cache line is read by the other compartments on
 * every call (is it asleep?) and written rarely; the second holds counters only its
 * owner writes, so counting a call never takes the first line away from a reader. */
struct flexos_compartment_state {
    uint32_t sleeping;                  /* 1 while it sleeps (in the kernel or in FLEXOS_HYPERCALL_WAIT) */
    uint32_t serving;                   /* 1 once its runtime answers gate calls */
    uint64_t padding0[7];
    uint64_t calls_out;                 /* gate calls made */
    uint64_t calls_in;                  /* gate calls served */
    uint64_t call_cycles_total;         /* TSC cycles of the sampled outgoing calls */
    uint64_t call_cycles_max;           /* the slowest sampled call */
    uint64_t calls_sampled;             /* one outgoing call in 64 is timed */
    uint64_t sleeps;                    /* times it slept (any wait) */
    uint64_t doorbells_rung;            /* wakes and kicks it rang as doorbells */
    uint64_t padding1;
};

/* The gate block, page by page, so that each page can be mapped only where it is
 * needed (the monitor's page tables enforce it):
 *   page 0                       the header: written by the monitor, read-only to guests;
 *   page 1 + i                   compartment i's state: writable by i, read-only to the rest;
 *   page 1 + MAX + pair(a, b)    the channels a -> b and b -> a (a < b): mapped in a and
 *                                b only, so no third compartment can touch them. */
struct flexos_gate_header {
    uint64_t magic;                     /* FLEXOS_GATE_MAGIC */
    uint32_t compartment_count;
    uint32_t reserved;
};

/* 1 header + 16 states + 16 * 15 / 2 pairs (a plain number, so Swift imports it). */
#define FLEXOS_GATE_BLOCK_PAGES 137u
_Static_assert(FLEXOS_GATE_BLOCK_PAGES == 1u + FLEXOS_MAX_COMPARTMENTS + FLEXOS_MAX_COMPARTMENTS * (FLEXOS_MAX_COMPARTMENTS - 1u) / 2u,
               "the gate block has a header, a state page per compartment and a page per pair");

/* The page (from the block's start) of the channels between compartments a and b. */
static inline uint64_t flexos_gate_pair_page(uint32_t a, uint32_t b) {
    uint32_t low = a < b ? a : b, high = a < b ? b : a;
    return 1u + FLEXOS_MAX_COMPARTMENTS + (uint64_t)high * (high - 1u) / 2u + low;
}

/* Byte offset of compartment i's state in the gate block. */
static inline uint64_t flexos_gate_state_offset(uint32_t i) {
    return (1u + (uint64_t)i) * FLEXOS_PAGE_SIZE;
}

/* Byte offset of the channel caller -> callee (caller != callee) in the gate block. */
static inline uint64_t flexos_gate_channel_offset(uint32_t caller, uint32_t callee) {
    return flexos_gate_pair_page(caller, callee) * FLEXOS_PAGE_SIZE
        + (caller < callee ? 0u : sizeof(struct flexos_gate_channel));
}

/* ---------------------------------------------------------------------------
 * The network device: a stream device for TCP. The monitor listens (flexosd launch
 * --listen), accepts connections and moves bytes between each socket and the rings of
 * one connection slot, with io_uring; the guest reads and writes the rings. The
 * device's memory is mapped only in the compartment that holds the library that
 * declares it (`devices: [net]` in its library.yaml).
 *
 *   offset 0                      struct flexos_net_device (one page)
 *   FLEXOS_NET_SLOTS_OFFSET       struct flexos_net_slot[FLEXOS_NET_CONNECTIONS]
 *   FLEXOS_NET_ADDRESSES_OFFSET   struct flexos_net_addresses[FLEXOS_NET_CONNECTIONS]
 *   FLEXOS_NET_RINGS_OFFSET       per slot: receive ring, then transmit ring
 *
 * Counters only grow; the byte for counter value c is ring[c % FLEXOS_NET_RING_BYTES].
 * Each counter has one writer. The monitor checks every value the guest writes
 * (0 <= rx_head - rx_tail <= ring, 0 <= tx_head - tx_tail <= ring, the accept queue
 * likewise) and ends the image set with a report naming the device when one is wrong.
 *
 * A connection: the monitor takes a free slot, writes the connection's addresses, bumps
 * the slot's generation and appends the slot's index to the accept queue. Received bytes go to rx (rx_head); the guest
 * consumes them (rx_tail). The guest appends to tx (tx_head); the monitor sends
 * (tx_tail). When the peer has sent all it will (its FIN), the monitor sets peer_closed to
 * FLEXOS_NET_PEER_FINISHED once rx_head is final: what the guest still writes is sent. When
 * the peer is gone (a reset, a failed send) it sets FLEXOS_NET_PEER_GONE: what the guest
 * writes is dropped.
 * When the guest is done it sets closed; the monitor sends what tx still holds, closes
 * the socket and zeroes the slot, which is free again.
 *
 * Sleeping: the side that waits sets its sleeping word, fences, looks once more, then
 * sleeps; the side that publishes something checks the other's word after a fence and
 * wakes it (the monitor wakes the guest's vCPU; the guest kicks with
 * FLEXOS_HYPERCALL_NET_KICK). While busy neither side sleeps, so there is no exit.
 * ------------------------------------------------------------------------- */
#define FLEXOS_NET_MAGIC         0x5445444E534F4C46ull /* "FLOSNDET" */
#define FLEXOS_NET_PEER_FINISHED 1u  /* no bytes will come after rx_head; replies still go out */
#define FLEXOS_NET_PEER_GONE     2u  /* nothing more goes either way */
#define FLEXOS_NET_CONNECTIONS   10240u                /* Redis's maxclients, and some */
#define FLEXOS_NET_RING_BYTES    0x4000ull             /* 16 KiB each way */
#define FLEXOS_NET_SLOTS_OFFSET  0x10000ull
#define FLEXOS_NET_ADDRESSES_OFFSET 0x150000ull
#define FLEXOS_NET_RINGS_OFFSET  0x200000ull           /* 2 MiB-aligned: the rings map as large pages */
#define FLEXOS_NET_DEVICE_BYTES  0x14200000ull         /* a plain number, so Swift imports it */
/* The device's memory is taken as it is touched: an idle connection's rings cost nothing. */

struct flexos_net_device {
    uint64_t magic;                     /* FLEXOS_NET_MAGIC, written by the monitor */
    uint32_t connections;               /* FLEXOS_NET_CONNECTIONS */
    uint32_t ring_bytes;                /* FLEXOS_NET_RING_BYTES */
    uint32_t monitor_sleeping;          /* written by the monitor */
    uint32_t reserved0;
    uint64_t accept_head;               /* written by the monitor */
    uint64_t padding0[4];
    uint32_t guest_sleeping;            /* written by the guest */
    uint32_t reserved1;
    uint64_t accept_tail;               /* written by the guest */
    uint64_t padding1[6];
    uint32_t accept_queue[FLEXOS_NET_CONNECTIONS]; /* slot numbers; entry c at [c % CONNECTIONS] */
};

struct flexos_net_slot {
    /* written by the monitor */
    uint64_t generation;                /* bumped at each accept on this slot */
    uint64_t rx_head;
    uint64_t tx_tail;
    uint32_t peer_closed;               /* 0, FLEXOS_NET_PEER_FINISHED or FLEXOS_NET_PEER_GONE */
    uint32_t listener;                  /* which --listen address it came in on */
    uint64_t padding0[4];
    /* written by the guest */
    uint64_t rx_tail;
    uint64_t tx_head;
    uint32_t closed;                    /* 1: send what tx holds, then close */
    uint32_t reserved;
    uint64_t padding1[5];
};

/* A socket address as the device writes it (CLIENT LIST shows them). */
#define FLEXOS_NET_FAMILY_IPV4 4u
#define FLEXOS_NET_FAMILY_IPV6 6u
struct flexos_net_address {
    uint8_t family;                     /* FLEXOS_NET_FAMILY_IPV4 or _IPV6; 0: unknown */
    uint8_t reserved;
    uint16_t port;                      /* host byte order */
    uint8_t bytes[16];                  /* network byte order; IPv4 in the first four */
};

/* A connection's two ends, written by the monitor before the slot enters the accept
 * queue, and not again until the slot is free and taken by another connection (which
 * bumps the slot's generation). */
struct flexos_net_addresses {
    struct flexos_net_address peer;
    struct flexos_net_address local;
    uint64_t padding[3];
};

/* Byte offset of the accept queue in the device (Swift does not import an array this long). */
static inline uint64_t flexos_net_accept_queue_offset(void) {
    return (uint64_t)__builtin_offsetof(struct flexos_net_device, accept_queue);
}

/* Byte offset of slot i's addresses. */
static inline uint64_t flexos_net_addresses_offset(uint32_t slot) {
    return FLEXOS_NET_ADDRESSES_OFFSET + sizeof(struct flexos_net_addresses) * slot;
}

/* Byte offset of slot i's receive ring (its transmit ring follows it). */
static inline uint64_t flexos_net_rx_offset(uint32_t slot) {
    return FLEXOS_NET_RINGS_OFFSET + 2ull * FLEXOS_NET_RING_BYTES * slot;
}

_Static_assert(sizeof(struct flexos_net_device) <= FLEXOS_NET_SLOTS_OFFSET, "the device header fits its page");
_Static_assert(FLEXOS_NET_DEVICE_BYTES == FLEXOS_NET_RINGS_OFFSET + 2ull * FLEXOS_NET_RING_BYTES * FLEXOS_NET_CONNECTIONS, "the device is its header, slots and rings");
_Static_assert(sizeof(struct flexos_net_slot) == 128, "a slot is two cache lines, one per writer");
_Static_assert(FLEXOS_NET_SLOTS_OFFSET + sizeof(struct flexos_net_slot) * FLEXOS_NET_CONNECTIONS <= FLEXOS_NET_ADDRESSES_OFFSET, "slots fit before the addresses");
_Static_assert(sizeof(struct flexos_net_addresses) == 64, "a slot's addresses are one cache line");
_Static_assert(FLEXOS_NET_ADDRESSES_OFFSET + sizeof(struct flexos_net_addresses) * FLEXOS_NET_CONNECTIONS <= FLEXOS_NET_RINGS_OFFSET, "addresses fit before the rings");
_Static_assert(FLEXOS_NET_DEVICE_ADDRESS + FLEXOS_NET_DEVICE_BYTES <= FLEXOS_HYPERCALL_WINDOW, "the device fits below the hypercall window");

/* ---------------------------------------------------------------------------
 * Every device of the ABI, for the host's tools that lay out or check an image set (the
 * toolchain, every engine, `flexosctl inspect`) without linking a device's code: its name in
 * library.yaml, what people call it, and the window its memory occupies in the one VM that
 * holds it. A new device adds its line here; abi.c makes the table the host reads.
 * ------------------------------------------------------------------------- */
#define FLEXOS_DEVICE_KINDS(KIND) \
    KIND("net", "network device", FLEXOS_NET_DEVICE_ADDRESS, FLEXOS_NET_DEVICE_BYTES)

struct flexos_device_kind {
    const char *name;
    const char *description;
    uint64_t window_base;
    uint64_t window_bytes;
};

/* The host's table (abi.c); guests never call these. */
unsigned flexos_device_kind_count(void);
const struct flexos_device_kind *flexos_device_kind_at(unsigned index);

/* ---------------------------------------------------------------------------
 * The QEMU engine (flexosd launch --engine qemu): the image set's one VM runs under
 * qemu-system-x86_64 -accel tcg -cpu max, started by the ring-0 shim in Guest/Ring0 (a PVH
 * ELF QEMU loads with -kernel), the only ring-0 code of the project. flexosd prepares the
 * guest memory as on KVM (page tables, boot info, console ring, image), has QEMU load it at
 * FLEXOS_SHIM_STAGING (below 1 MiB the firmware would overwrite it) and the handoff at
 * FLEXOS_SHIM_HANDOFF; the shim copies it in place, enters long mode on those page tables
 * (its own pages are supervisor-only), and enters ring 3 as the monitor would.
 * Console bytes go out on COM1, reports (exit, panic, fault) as lines on COM2 (the control
 * port), both 16550 UARTs: QEMU's isa-serial, which is what a libvirt <serial> device is,
 * so a libvirt domain needs no passthrough for them. Then the isa-debug-exit port ends QEMU.
 *
 * Hypercalls: where flexosd runs QEMU itself (served_by_flexosd), the shim serves none: it
 * writes the call (struct flexos_shim_call, with ring 3's registers for the report of a call
 * flexosd refuses) to FLEXOS_SHIM_CALL_RECORD, a page only ring 0 maps, sends the byte
 * FLEXOS_SHIM_CALL on the control port and waits for one answer byte, FLEXOS_SHIM_RESUME
 * (back to ring 3) or FLEXOS_SHIM_END (end QEMU: flexosd has what ended the run). flexosd
 * serves the call with the KVM engine's code, on the guest memory QEMU shares with it. A
 * domain `flexosctl export --libvirt` writes, which no flexosd answers, gets served_by_flexosd
 * 0: the shim serves the hypercalls itself, the way it always did.
 * ------------------------------------------------------------------------- */
#define FLEXOS_SHIM_BASE          0x3F000000ull
#define FLEXOS_SHIM_BYTES         0x100000ull
#define FLEXOS_SHIM_HANDOFF       0x3FFFF000ull
#define FLEXOS_SHIM_STAGING       0x3E000000ull
#define FLEXOS_SHIM_MAGIC         0x4D494853534F4C46ull /* "FLOSSHIM" */
#define FLEXOS_SHIM_CONSOLE_PORT  0x3F8u /* COM1 */
#define FLEXOS_SHIM_CONTROL_PORT  0x2F8u /* COM2 */
#define FLEXOS_SHIM_EXIT_PORT     0xF4u
#define FLEXOS_SHIM_CALL_RECORD   0x3FFFE000ull /* the page below the handoff */
#define FLEXOS_SHIM_CALL          0x63u /* 'c' */
#define FLEXOS_SHIM_RESUME        0x72u /* 'r' */
#define FLEXOS_SHIM_END           0x65u /* 'e' */

struct flexos_shim_call {
    uint64_t number;
    uint64_t argument;
    uint64_t pkru;                      /* ring 3's, for `flexosctl inspect compartments` */
    uint64_t rip, rsp, rbp;             /* ring 3's */
};

struct flexos_shim_handoff {
    uint64_t magic;                     /* FLEXOS_SHIM_MAGIC */
    uint64_t page_table_root;           /* CR3 */
    uint64_t staging_target;            /* where the staged low memory belongs */
    uint64_t staging_bytes;
    uint64_t entry;                     /* ring-3 RIP */
    uint64_t stack_top;                 /* ring-3 RSP */
    uint64_t boot_info;                 /* ring-3 RDI */
    uint64_t tsc_hz;
    uint32_t pkru;                      /* PKRU ring 3 starts with */
    uint32_t protection_keys;           /* 1: set CR4.PKE */
    uint64_t stack_count;
    uint64_t stacks[2 * FLEXOS_MAX_COMPARTMENTS]; /* [low, high) of each stack, for fault dumps */
    uint64_t served_by_flexosd;         /* 1: forward every hypercall on the control port */
};

_Static_assert(sizeof(struct flexos_boot_info) == 208, "boot info layout");
_Static_assert(FLEXOS_BOOT_KEYED_TABLE_OFFSET >= sizeof(struct flexos_boot_info), "the keyed table follows the boot info");
_Static_assert(sizeof(struct flexos_compartment_runtime) == 64, "compartment runtime layout");
_Static_assert(FLEXOS_BOOT_KEYED_TABLE_OFFSET + FLEXOS_MAX_COMPARTMENTS * sizeof(struct flexos_keyed_compartment) <= FLEXOS_PAGE_SIZE, "the keyed table fits the boot-info page");
_Static_assert(sizeof(struct flexos_gate_channel) == 128, "a channel is two cache lines");
_Static_assert(sizeof(struct flexos_compartment_state) == 128, "two cache lines per compartment");

#endif
