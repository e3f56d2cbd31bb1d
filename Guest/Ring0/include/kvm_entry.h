/*
 * The KVM engine's ring-0 code (kvm_entry.S): where its pieces sit in the page flexosd
 * copies it to (GuestMachine/ExceptionEntry.swift), and how Swift finds its bytes.
 * Assembly includes this file too, so only the part for C sees flexos_abi.h.
 */
#ifndef FLEXOS_KVM_ENTRY_H
#define FLEXOS_KVM_ENTRY_H

/* The exception stubs: one per vector 0-31, this many bytes apart, at offset 0. */
#define FLEXOS_KVM_ENTRY_VECTORS 32
#define FLEXOS_KVM_ENTRY_STUB_BYTES 16
/* The sleep path (entered by the #UD gate) and the wake vector's handler. */
#define FLEXOS_KVM_ENTRY_SLEEP_PATH 0x200
#define FLEXOS_KVM_ENTRY_WAKE_HANDLER 0x280
#define FLEXOS_KVM_ENTRY_BYTES 0x300

/* As in flexos_abi.h, which is C; checked below. */
#define FLEXOS_KVM_ENTRY_TRAP_REPORT 0xC0001000
#define FLEXOS_KVM_ENTRY_SLEEP_ENTRY 0x1FF000

#ifndef __ASSEMBLER__
#include "flexos_abi.h"

_Static_assert(FLEXOS_KVM_ENTRY_TRAP_REPORT == FLEXOS_TRAP_REPORT_ADDRESS, "the stubs report where flexosd listens");
_Static_assert(FLEXOS_KVM_ENTRY_SLEEP_ENTRY == FLEXOS_SLEEP_ENTRY, "the sleep path checks the guest's sleep entry");

/* The stubs, the sleep path and the wake handler: FLEXOS_KVM_ENTRY_BYTES bytes, copied
 * to the guest's stubs page. */
extern const unsigned char flexos_kvm_entry[];
/* The ring-3 sleep entry, `ud2; ret`, copied to FLEXOS_SLEEP_ENTRY. */
extern const unsigned char flexos_kvm_sleep_entry[];
extern const unsigned char flexos_kvm_sleep_entry_end[];

static inline const unsigned char *flexos_kvm_entry_bytes(void) { return flexos_kvm_entry; }
static inline const unsigned char *flexos_kvm_sleep_entry_bytes(void) { return flexos_kvm_sleep_entry; }
static inline unsigned long flexos_kvm_sleep_entry_size(void) {
    return (unsigned long)(flexos_kvm_sleep_entry_end - flexos_kvm_sleep_entry);
}
#endif

#endif
