/*
 * The KVM engine's ring-0 code. flexosd copies these bytes into every KVM guest's stubs
 * page (see GuestMachine/ExceptionEntry.swift for the tables around them, and
 * include/kvm_entry.h for the offsets). Nothing here reads memory a compartment can
 * write, but the CPU's exception frame on the entry's own stack and EDI (a count).
 *
 * The exception stubs. FlexOS guests handle no exception themselves: each vector's stub
 * pushes a zero where the CPU pushes no error code, then its vector, and stores to the
 * report address, which has no memory slot: an MMIO exit, where flexosd reads the frame
 * off this stack and ends the run. The `ud2` after it is never reached.
 *
 * The sleep path. Ring 3 sleeps by calling FLEXOS_SLEEP_ENTRY (`ud2; ret`), the one page
 * of the trap area it may run; the #UD gate leads here. A `ud2` from anywhere else goes on
 * to the #UD stub and its report. Otherwise: acknowledge the last interrupt (the x2APIC's
 * EOI), arm the one-shot timer with EDI nanoseconds (0: none), halt with interrupts on
 * until the wake vector arrives (a doorbell, a device or the timer), and return past the
 * `ud2`. The wake vector's handler only returns: the wake lands on the `hlt`. Under PVM
 * ring 0 is emulated instruction by instruction, so the path stays short.
 */
#include "include/kvm_entry.h"

#define X2APIC_EOI 0x80B
#define X2APIC_TIMER_INITIAL_COUNT 0x838

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR_CODE(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || (v) == 13 || (v) == 14 \
    || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

    .section .rodata.flexos_kvm_entry, "a"
    .globl flexos_kvm_entry
    .p2align 4
flexos_kvm_entry:

.macro stub vector
    .org flexos_kvm_entry + \vector * FLEXOS_KVM_ENTRY_STUB_BYTES, 0xCC
stub_\vector:
    .if HAS_ERROR_CODE(\vector) == 0
    pushq $0
    .endif
    pushq $\vector
    movabsq %rax, FLEXOS_KVM_ENTRY_TRAP_REPORT
    ud2
.endm

    .irp vector, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    stub \vector
    .endr

    .org flexos_kvm_entry + FLEXOS_KVM_ENTRY_SLEEP_PATH, 0xCC
sleep_path:
    cmpq $FLEXOS_KVM_ENTRY_SLEEP_ENTRY, (%rsp)      /* the frame's RIP: the sleep entry's ud2? */
    jne stub_6                                      /* no: the #UD stub, a report */
    xorl %eax, %eax
    xorl %edx, %edx
    movl $X2APIC_EOI, %ecx
    wrmsr
    movl %edi, %eax
    movl $X2APIC_TIMER_INITIAL_COUNT, %ecx
    wrmsr
    sti
    hlt
    addq $2, (%rsp)                                 /* return past the ud2, to its ret */
    iretq

    .org flexos_kvm_entry + FLEXOS_KVM_ENTRY_WAKE_HANDLER, 0xCC
wake_handler:
    iretq

    .org flexos_kvm_entry + FLEXOS_KVM_ENTRY_BYTES, 0xCC

    .globl flexos_kvm_sleep_entry, flexos_kvm_sleep_entry_end
flexos_kvm_sleep_entry:
    ud2
    ret
flexos_kvm_sleep_entry_end:

    .section .note.GNU-stack, "", @progbits
