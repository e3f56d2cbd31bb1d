/*
 * The runtime's few pieces that must be C.
 *
 * - The ABI version note: a @used Swift global would be emitted again in every module
 *   that imports the runtime, so the one copy the monitor reads lives here.
 * - flexos_hypercall_mode: one copy, in the runtime's data, that every compartment sees.
 * - free(3): the Embedded Swift runtime calls it, and Swift code may not define a
 *   symbol of that name; it forwards to the runtime's Swift heap (Heap.swift).
 */
#include <flexos_abi.h>

__attribute__((section(".flexos_abi"), used))
const uint32_t flexos_abi_version = FLEXOS_ABI_VERSION;

/* Set at boot from the boot info (Boot.swift); read by every hypercall (flexos_guest.h). */
uint32_t flexos_hypercall_mode = FLEXOS_HYPERCALL_MODE_MMIO;
uint32_t flexos_current_compartment = 0;

void flexos_private_free(void *pointer);

void free(void *pointer) { flexos_private_free(pointer); }
