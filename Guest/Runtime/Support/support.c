/*
 * The runtime's few pieces that must be C.
 *
 * - The ABI version note: a @used Swift global would be emitted again in every module
 *   that imports the runtime, so the one copy the monitor reads lives here; likewise the
 *   stack canary, which the monitor writes.
 * - free(3): the Embedded Swift runtime calls it, and Swift code may not define a
 *   symbol of that name; it forwards to the runtime's Swift heap (Heap.swift).
 * - swift_beginAccess and swift_endAccess: every Embedded Swift module defines them as
 *   weak no-ops, so the runtime's real ones must be strong, and C; they forward to
 *   Exclusivity.swift with the caller's address.
 * - flexos_caller_outside_runtime: a frame-pointer walk, which needs the frame address.
 * - sqrt(3): Double.squareRoot() calls the C library's, which the guest does not have;
 *   SSE2's sqrtsd rounds exactly as IEEE 754 (and libm) do.
 */
#include <flexos_abi.h>

__attribute__((section(".flexos_abi"), used))
const uint32_t flexos_abi_version = FLEXOS_ABI_VERSION;

/* The canary every stack-protected function checks. It lives in read-only memory, in a
 * section of its own that the monitor finds and fills with a random value per VM before
 * the guest first runs: no compartment can change it (under intel-mpk, writable runtime
 * data is every compartment's), though the compartments of one VM can read it. */
__attribute__((section(".flexos_stack_guard"), used))
const volatile uintptr_t __stack_chk_guard = 0;

void flexos_private_free(void *pointer);

void free(void *pointer) { flexos_private_free(pointer); }

void flexos_begin_access(void *pointer, void *buffer, uintptr_t flags, uintptr_t pc);
void flexos_end_access(void *buffer);

/* The compiler passes no code address: the return address, less one, is the call. */
void swift_beginAccess(void *pointer, void *buffer, uintptr_t flags, void *pc) {
    flexos_begin_access(pointer, buffer, flags, pc ? (uintptr_t)pc : (uintptr_t)__builtin_return_address(0) - 1);
}

void swift_endAccess(void *buffer) { flexos_end_access(buffer); }

double sqrt(double x) {
    double root;
    __asm__("sqrtsd %1, %0" : "=x"(root) : "x"(x));
    return root;
}

/* Bounds of the runtime's code, from the generated linker script. */
extern const char flexos_runtime_text_start[], flexos_runtime_text_end[];

uintptr_t flexos_caller_outside_runtime(void) {
    const uintptr_t *frame = __builtin_frame_address(0);
    for (int depth = 0; depth < 16 && frame && ((uintptr_t)frame & 7) == 0; depth++) {
        uintptr_t returnAddress = frame[1];
        if (returnAddress < (uintptr_t)flexos_runtime_text_start || returnAddress >= (uintptr_t)flexos_runtime_text_end) {
            return returnAddress ? returnAddress - 1 : 0;
        }
        const uintptr_t *next = (const uintptr_t *)frame[0];
        if (next <= frame || (uintptr_t)next - (uintptr_t)frame > (1u << 20)) break;
        frame = next;
    }
    return 0;
}
