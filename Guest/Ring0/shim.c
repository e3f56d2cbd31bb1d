/*
 * The QEMU engine's ring-0 shim: the only ring-0 code of FlexOS (flexos_abi.h, "The QEMU
 * engine"). It sets up what ring 3 needs and then only serves: hypercalls arrive by
 * `syscall`; under flexosd they go to flexosd on the control port, which serves them with
 * the KVM engine's code, and only in an exported libvirt domain (no flexosd to answer) does the
 * shim serve them itself, with port I/O to QEMU devices; an exception becomes a report on the
 * control port (registers, then the faulting stack), which flexosd turns into the same
 * fault report as on KVM. Nothing here trusts the guest: it reads guest memory only
 * within the ranges the monitor described.
 */
#include <flexos_abi.h>
#include <stddef.h>
#include <stdint.h>

extern void shim_syscall(void);
extern void shim_enter_user(uint64_t rip, uint64_t rsp, uint64_t rdi) __attribute__((noreturn));
extern uint64_t shim_gdt_tss[2];
extern char shim_stack_top[];
#define STUB(n) extern void shim_exception_##n(void);
STUB(0) STUB(1) STUB(2) STUB(3) STUB(4) STUB(5) STUB(6) STUB(7) STUB(8) STUB(9) STUB(10)
STUB(11) STUB(12) STUB(13) STUB(14) STUB(15) STUB(16) STUB(17) STUB(18) STUB(19) STUB(20) STUB(21)

/* shim_entry.S reads these fields by offset before long mode. */
_Static_assert(FLEXOS_SHIM_STAGING == 0x3E000000 && FLEXOS_SHIM_HANDOFF == 0x3FFFF000, "shim_entry.S has the same addresses");
_Static_assert(offsetof(struct flexos_shim_handoff, page_table_root) == 8 && offsetof(struct flexos_shim_handoff, staging_target) == 16
               && offsetof(struct flexos_shim_handoff, staging_bytes) == 24 && offsetof(struct flexos_shim_handoff, protection_keys) == 68,
               "shim_entry.S has the same offsets");

static const struct flexos_shim_handoff *const handoff = (const struct flexos_shim_handoff *)FLEXOS_SHIM_HANDOFF;

/* ---- Port I/O: the serial ports and the control port ---- */

static inline void outb(uint16_t port, uint8_t value) { __asm__ volatile("outb %0, %1" ::"a"(value), "dN"(port)); }
static inline void outl(uint16_t port, uint32_t value) { __asm__ volatile("outl %0, %1" ::"a"(value), "dN"(port)); }
static inline uint8_t inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "dN"(port));
    return value;
}

/* A 16550 UART: no interrupts, 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on. */
static void serial_init(uint16_t port) {
    outb(port + 1, 0x00);            /* IER: no interrupts */
    outb(port + 3, 0x80);            /* LCR: DLAB, to set the divisor */
    outb(port + 0, 0x01);            /* divisor 1: 115200 baud */
    outb(port + 1, 0x00);
    outb(port + 3, 0x03);            /* LCR: 8N1 */
    outb(port + 2, 0xC7);            /* FCR: FIFOs on and cleared */
    outb(port + 4, 0x03);            /* MCR: DTR, RTS */
}

/* Sends a byte once the transmitter has room (LSR bit 5): QEMU clears it while the
 * chardev behind cannot take more, so no byte is lost to a slow reader. (A port with no
 * device reads 0xFF: room.) */
static void serial_write(uint16_t port, uint8_t value) {
    while (!(inb(port + 5) & 0x20)) __asm__ volatile("pause");
    outb(port, value);
}

static void control_bytes(const uint8_t *bytes, uint64_t count) {
    for (uint64_t i = 0; i < count; i++) serial_write(FLEXOS_SHIM_CONTROL_PORT, bytes[i]);
}

static void control_text(const char *text) {
    while (*text) serial_write(FLEXOS_SHIM_CONTROL_PORT, (uint8_t)*text++);
}

static void control_hex(uint64_t value) {
    char digits[19] = "0x";
    for (int i = 0; i < 16; i++) digits[2 + i] = "0123456789abcdef"[(value >> (60 - 4 * i)) & 15];
    digits[18] = 0;
    control_text(digits);
    serial_write(FLEXOS_SHIM_CONTROL_PORT, ' ');
}

/* Ends QEMU (isa-debug-exit); flexosd reads the outcome from the control port. */
static void __attribute__((noreturn)) quit(void) {
    outl(FLEXOS_SHIM_EXIT_PORT, 0);
    for (;;) __asm__ volatile("hlt");
}

/* ---- Guest memory the shim may read: what the monitor described ---- */

static int in_stack(uint64_t address, uint64_t length, uint64_t *top) {
    for (uint64_t i = 0; i < handoff->stack_count && i < FLEXOS_MAX_COMPARTMENTS; i++) {
        uint64_t low = handoff->stacks[2 * i], high = handoff->stacks[2 * i + 1];
        if (address >= low && address < high && length <= high - address) {
            if (top) *top = high;
            return 1;
        }
    }
    return 0;
}

/* ---- Hypercalls ---- */

static inline uint64_t rdtsc(void) {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

static uint64_t nanoseconds(void) {
    uint64_t hz = handoff->tsc_hz ? handoff->tsc_hz : 1000000000ull;
    uint64_t ticks = rdtsc();
    return (ticks / hz) * 1000000000ull + (ticks % hz) * 1000000000ull / hz;
}

static void console_flush(void) {
    struct flexos_console_ring *ring = (struct flexos_console_ring *)FLEXOS_CONSOLE_RING_ADDRESS;
    uint64_t size = FLEXOS_CONSOLE_RING_BYTES - sizeof(struct flexos_console_ring);
    uint64_t head = ring->head, tail = ring->tail;
    if (head - tail > size) {
        control_text("bad the console ring is corrupt (head and tail disagree)\n");
        quit();
    }
    for (; tail != head; tail++) serial_write(FLEXOS_SHIM_CONSOLE_PORT, ring->data[tail % size]);
    ring->tail = tail;
}

static void bad_hypercall(const char *why, uint64_t number) {
    console_flush();
    control_text("bad ");
    control_text(why);
    control_text(" ");
    control_hex(number);
    control_text("\n");
    quit();
}

/* The argument block must be readable, 8-aligned, and on a stack the monitor named (the
 * runtime builds every block on its stack). */
static void *block(uint64_t address, uint64_t length) {
    if (address % 8 || !in_stack(address, length, 0)) bad_hypercall("hypercall argument block outside the stacks", address);
    return (void *)address;
}

static void panic(const struct flexos_hc_panic *request) {
    console_flush();
    uint64_t message_length = request->message_length > 4096 ? 4096 : request->message_length;
    uint64_t file_length = request->file_length > 4096 ? 4096 : request->file_length;
    control_text("panic ");
    control_hex(request->line);
    control_hex(file_length);
    control_hex(message_length);
    control_text("\n");
    /* The texts are the runtime's static strings: in the image, which every compartment maps. */
    if (request->file >= FLEXOS_IMAGE_BASE && request->file + file_length <= FLEXOS_IMAGE_LIMIT)
        control_bytes((const uint8_t *)request->file, file_length);
    else
        for (uint64_t i = 0; i < file_length; i++) serial_write(FLEXOS_SHIM_CONTROL_PORT, '?');
    if (request->message >= FLEXOS_IMAGE_BASE && request->message + message_length <= FLEXOS_IMAGE_LIMIT)
        control_bytes((const uint8_t *)request->message, message_length);
    else
        for (uint64_t i = 0; i < message_length; i++) serial_write(FLEXOS_SHIM_CONTROL_PORT, '?');
    quit();
}

static inline uint32_t rdpkru(void) {
    uint32_t value;
    __asm__ volatile("rdpkru" : "=a"(value) : "c"(0) : "rdx");
    return value;
}

/* Under flexosd: the call goes to flexosd, which serves it on the guest memory QEMU shares
 * with it (the KVM engine's code), and answers with one byte. The shim touches no guest
 * memory for it; the record is in a page only ring 0 maps. */
static void forward_hypercall(uint64_t number, uint64_t argument, uint64_t rip, uint64_t rsp, uint64_t rbp) {
    volatile struct flexos_shim_call *call = (volatile struct flexos_shim_call *)FLEXOS_SHIM_CALL_RECORD;
    call->number = number;
    call->argument = argument;
    call->pkru = handoff->protection_keys ? rdpkru() : 0;
    call->rip = rip;
    call->rsp = rsp;
    call->rbp = rbp;
    serial_write(FLEXOS_SHIM_CONTROL_PORT, FLEXOS_SHIM_CALL);
    while (!(inb(FLEXOS_SHIM_CONTROL_PORT + 5) & 0x01)) __asm__ volatile("pause"); /* LSR: data ready */
    if (inb(FLEXOS_SHIM_CONTROL_PORT) != FLEXOS_SHIM_RESUME) quit();
}

void shim_hypercall(uint64_t number, uint64_t argument, uint64_t rip, uint64_t rsp, uint64_t rbp) {
    if (handoff->served_by_flexosd) {
        forward_hypercall(number, argument, rip, rsp, rbp);
        return;
    }
    switch (number) {
    case FLEXOS_HYPERCALL_CONSOLE_FLUSH:
        console_flush();
        return;
    case FLEXOS_HYPERCALL_EXIT: {
        const struct flexos_hc_exit *request = block(argument, sizeof *request);
        console_flush();
        control_text("exit ");
        control_hex((uint64_t)request->code);
        control_text("\n");
        quit();
    }
    case FLEXOS_HYPERCALL_PANIC:
        panic(block(argument, sizeof(struct flexos_hc_panic)));
        return;
    case FLEXOS_HYPERCALL_TIME: {
        /* No wall clock here (only a domain of `flexosctl export` runs this): unix time unknown. */
        struct flexos_hc_time *time = block(argument, sizeof *time);
        time->nanoseconds = nanoseconds();
        time->unix_nanoseconds = 0;
        return;
    }
    case FLEXOS_HYPERCALL_WAIT: {
        /* One VM: nothing else can wake it, so a wait is a pause until its timeout. */
        struct flexos_hc_wait *request = block(argument, sizeof *request);
        uint64_t deadline = nanoseconds() + (request->timeout_nanoseconds ? request->timeout_nanoseconds : 1000000);
        while (nanoseconds() < deadline) __asm__ volatile("pause");
        request->woken = 0;
        return;
    }
    case FLEXOS_HYPERCALL_WAKE:
        return;
    default:
        bad_hypercall("hypercall the QEMU engine does not serve:", number);
    }
}

/* ---- Exceptions ---- */

struct frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

static inline void wrpkru(uint32_t value) { __asm__ volatile("wrpkru" ::"a"(value), "c"(0), "d"(0)); }

/* Reports the exception: `fault` with the vector, error code and registers, then the
 * faulting stack (from RSP to the top of the stack it lies in, at most 64 KiB) so that
 * flexosd can walk the frames. */
void shim_exception(const struct frame *frame) {
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    uint32_t pkru = handoff->protection_keys ? rdpkru() : 0;
    if (handoff->protection_keys) wrpkru(0); /* the dump may read any compartment's stack */
    if (!handoff->served_by_flexosd) console_flush(); /* else flexosd drains the ring it shares */
    control_text("fault ");
    const uint64_t values[] = {frame->vector, frame->error, frame->rip, frame->rsp, frame->rflags, cr2, pkru, frame->cs,
                               frame->rax, frame->rbx, frame->rcx, frame->rdx, frame->rsi, frame->rdi, frame->rbp,
                               frame->r8, frame->r9, frame->r10, frame->r11, frame->r12, frame->r13, frame->r14, frame->r15};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) control_hex(values[i]);
    control_text("\n");
    uint64_t top = 0, start = frame->rsp & ~7ull;
    if ((frame->cs & 3) == 3 && in_stack(start, 8, &top)) {
        uint64_t length = top - start > 65536 ? 65536 : top - start;
        control_text("stack ");
        control_hex(start);
        control_hex(length);
        control_text("\n");
        control_bytes((const uint8_t *)start, length);
    }
    quit();
}

/* ---- Set-up ---- */

struct __attribute__((packed)) idt_entry {
    uint16_t offset_low, selector;
    uint8_t ist, type;
    uint16_t offset_middle;
    uint32_t offset_high, reserved;
};

static struct idt_entry idt[32] __attribute__((aligned(16)));

static struct __attribute__((packed)) {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1, ist[7], reserved2;
    uint16_t reserved3, iomap;
} tss __attribute__((aligned(16)));

static void set_gate(int vector, void (*handler)(void)) {
    uint64_t address = (uint64_t)handler;
    idt[vector] = (struct idt_entry){(uint16_t)address, 0x08, 0, 0x8E, (uint16_t)(address >> 16), (uint32_t)(address >> 32), 0};
}

static inline void wrmsr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

void __attribute__((noreturn)) shim_main(void) {
    serial_init(FLEXOS_SHIM_CONSOLE_PORT);
    serial_init(FLEXOS_SHIM_CONTROL_PORT);
    if (handoff->magic != FLEXOS_SHIM_MAGIC) {
        control_text("bad the handoff block is missing (flexosd did not load it)\n");
        quit();
    }
    void (*stubs[])(void) = {shim_exception_0, shim_exception_1, shim_exception_2, shim_exception_3, shim_exception_4,
                             shim_exception_5, shim_exception_6, shim_exception_7, shim_exception_8, shim_exception_9,
                             shim_exception_10, shim_exception_11, shim_exception_12, shim_exception_13, shim_exception_14,
                             shim_exception_15, shim_exception_16, shim_exception_17, shim_exception_18, shim_exception_19,
                             shim_exception_20, shim_exception_21};
    for (int vector = 0; vector < 22; vector++) set_gate(vector, stubs[vector]);
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idt_pointer = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(idt_pointer));

    tss.rsp[0] = (uint64_t)shim_stack_top;
    tss.iomap = sizeof tss;
    uint64_t base = (uint64_t)&tss, limit = sizeof tss - 1;
    shim_gdt_tss[0] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    shim_gdt_tss[1] = base >> 32;
    __asm__ volatile("ltr %w0" ::"r"(0x30));

    wrmsr(0xC0000081, (0x18ull << 48) | (0x08ull << 32)); /* STAR: sysret to 0x28/0x20, syscall to 0x08/0x10 */
    wrmsr(0xC0000082, (uint64_t)shim_syscall);            /* LSTAR */
    wrmsr(0xC0000084, 0x4700);                            /* SFMASK: TF, IF, DF, AC */
    if (handoff->protection_keys) wrpkru(handoff->pkru);
    shim_enter_user(handoff->entry, handoff->stack_top, handoff->boot_info);
}
