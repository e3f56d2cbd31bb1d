/*
 * The QEMU engine's ring-0 shim, entry code (see shim.c and flexos_abi.h).
 *
 * QEMU enters shim_start32 through the PVH note: 32-bit protected mode, flat segments,
 * paging off, interrupts off. It copies the staged guest memory in place, turns on long
 * mode with the monitor's page tables, and calls shim_main in 64-bit mode. Also here:
 * the syscall entry (hypercalls from ring 3), the exception stubs, and the iretq to ring 3.
 */
/* As in flexos_abi.h (which is C and cannot be included here); shim.c checks they agree. */
#define FLEXOS_SHIM_STAGING 0x3E000000
#define FLEXOS_SHIM_HANDOFF 0x3FFFF000
/* Offsets in struct flexos_shim_handoff. */
#define PAGE_TABLE_ROOT 8
#define STAGING_TARGET 16
#define STAGING_BYTES 24
#define PROTECTION_KEYS 68

#define HANDOFF(field) (FLEXOS_SHIM_HANDOFF + field)
#define KERNEL_CODE 0x08
#define KERNEL_DATA 0x10

    .section .note.Xen, "a"
    .p2align 2
    .long 4, 4, 18              /* name size, descriptor size, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long shim_start32

    .section .text.start, "ax"
    .code32
    .globl shim_start32
shim_start32:
    cli
    cld
    mov $FLEXOS_SHIM_STAGING, %esi
    mov HANDOFF(STAGING_TARGET), %edi
    mov HANDOFF(STAGING_BYTES), %ecx
    rep movsb
    lgdt shim_gdt_pointer
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax   /* PAE, OSFXSR, OSXMMEXCPT */
    testl $1, HANDOFF(PROTECTION_KEYS)
    jz 1f
    or $(1 << 22), %eax         /* PKE */
1:  mov %eax, %cr4
    mov HANDOFF(PAGE_TABLE_ROOT), %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx       /* EFER: LME, NXE, SCE */
    rdmsr
    or $((1 << 8) | (1 << 11) | (1 << 0)), %eax
    wrmsr
    mov %cr0, %eax
    and $~(1 << 2), %eax        /* no EM: SSE for Swift code */
    or $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax   /* PG, WP, MP, PE */
    mov %eax, %cr0
    ljmp $KERNEL_CODE, $shim_start64

    .code64
shim_start64:
    mov $KERNEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    lea shim_stack_top(%rip), %rsp
    call shim_main
1:  hlt
    jmp 1b

/* shim_enter_user(rip, rsp, rdi): iretq to ring 3. */
    .globl shim_enter_user
shim_enter_user:
    pushq $(0x20 | 3)           /* user data */
    pushq %rsi
    pushq $0x2                  /* RFLAGS: interrupts stay off */
    pushq $(0x28 | 3)           /* user code */
    pushq %rdi
    mov %rdx, %rdi
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %ebp, %ebp
    iretq

/* syscall from ring 3: RDI = hypercall number, RSI = argument block. shim_hypercall also
 * gets ring 3's RIP, RSP and RBP, for the report flexosd makes of a hypercall it refuses. */
    .globl shim_syscall
shim_syscall:
    mov %rsp, shim_user_rsp(%rip)
    lea shim_stack_top(%rip), %rsp
    push %rcx                   /* user RIP */
    push %r11                   /* user RFLAGS */
    push %rdi
    push %rsi
    push %rdx
    push %r8
    push %r9
    push %r10
    push %rax
    sub $8, %rsp
    mov %rcx, %rdx              /* user RIP */
    mov shim_user_rsp(%rip), %rcx
    mov %rbp, %r8
    call shim_hypercall
    add $8, %rsp
    pop %rax
    pop %r10
    pop %r9
    pop %r8
    pop %rdx
    pop %rsi
    pop %rdi
    pop %r11
    pop %rcx
    mov shim_user_rsp(%rip), %rsp
    sysretq

/* Exceptions: a stub per vector pushes (error code, vector), then every register. */
    .macro stub vector, has_error
    .globl shim_exception_\vector
shim_exception_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp shim_exception_common
    .endm

    stub 0, 0
    stub 1, 0
    stub 2, 0
    stub 3, 0
    stub 4, 0
    stub 5, 0
    stub 6, 0
    stub 7, 0
    stub 8, 1
    stub 9, 0
    stub 10, 1
    stub 11, 1
    stub 12, 1
    stub 13, 1
    stub 14, 1
    stub 15, 0
    stub 16, 0
    stub 17, 1
    stub 18, 0
    stub 19, 0
    stub 20, 0
    stub 21, 1

shim_exception_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    and $~15, %rsp
    call shim_exception
1:  hlt
    jmp 1b

    .section .data
    .p2align 3
shim_gdt:
    .quad 0                     /* 0x00 null */
    .quad 0x00AF9A000000FFFF    /* 0x08 kernel code, 64-bit */
    .quad 0x00CF92000000FFFF    /* 0x10 kernel data */
    .quad 0x00CFFA000000FFFF    /* 0x18 user code, 32-bit (sysret's base; unused) */
    .quad 0x00CFF2000000FFFF    /* 0x20 user data */
    .quad 0x00AFFA000000FFFF    /* 0x28 user code, 64-bit */
    .globl shim_gdt_tss
shim_gdt_tss:
    .quad 0, 0                  /* 0x30 TSS, filled by shim_main */
shim_gdt_end:
shim_gdt_pointer:
    .word shim_gdt_end - shim_gdt - 1
    .quad shim_gdt
    .globl shim_user_rsp
shim_user_rsp:
    .quad 0

    .section .bss
    .p2align 4
    .space 16384
    .globl shim_stack_top
shim_stack_top:
