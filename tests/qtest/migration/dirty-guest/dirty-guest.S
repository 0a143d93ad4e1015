/*
 * Boot sector for the dirty-rate and COLO qtests: a guest whose dirtying
 * of memory is known exactly.
 *
 * SeaBIOS loads this sector at 0x7c00 and jumps to it in real mode.  It
 * switches to flat 32-bit protected mode and then writes pages of a region
 * over and over:
 *
 *  - unpaced (pages-per-tick = 0): as fast as it can, page after page,
 *    wrapping at the end of the region;
 *  - paced (pages-per-tick = N): N new pages per tick of DG_TICK_HZ, then
 *    it waits for the next tick; with ticks-per-batch = T > 1, N pages
 *    every T ticks (rates below one page per tick).
 *
 * Time comes from polling the ACPI PM timer (3.579545 MHz, 24 bits) that
 * SeaBIOS maps at DG_PM_TIMER_PORT.  The guest takes no interrupts: KVM's
 * instruction emulator, which runs non-paged protected mode on hosts
 * without unrestricted guest support, cannot emulate a protected-mode IRET.
 *
 * Each write stores the running write count into the first word of the
 * page, so every write changes the page's contents (page sampling hashes
 * them).  Parameters are read on every step from the sector itself, so the
 * host may change them while the guest runs (a non-zero freeze parameter
 * stops every vCPU from writing anything, its statistics included, until
 * it is zero again); statistics are kept at
 * DG_STATS, just past the sector, where the host reads them:
 *
 *   +0  u64 page writes since boot
 *   +8  u32 ticks since boot (vCPU 0 only)
 *   +12 u32 completed passes over the region (over the vCPU's slice)
 *   +16 u32 DG_MAGIC once the vCPU is running
 *   +20 u32 page cursor (index in the region of the next page to write)
 *   +24 u32 PM timer value at the last tick (vCPU 0 only)
 *
 * With DG_P_VCPUS = n > 1 (the machine must have n vCPUs), vCPU 0, the
 * bootstrap processor, starts the others with INIT-SIPI-SIPI through the
 * local APIC, pointing them at a jump to the start of this sector that it
 * writes at DG_AP_STUB.  vCPU i is the one whose APIC ID is i (QEMU
 * numbers them 0..n-1).  Every vCPU then runs the same loop on its own
 * slice of the region, pages [i * P / n, (i + 1) * P / n) of the P pages,
 * with its own statistics block at DG_STATS_VCPU(i) (vCPU 0's is
 * DG_STATS); its cursor stays in its slice and its passes count passes
 * over its slice.  The blocks are a page apart, so that the other vCPUs
 * write neither this sector's page, where TCG checks every write for
 * self-modifying code, nor each other's; the stacks are kept out of it
 * too.
 *
 * Only vCPU 0 polls the PM timer; the others pace themselves by its tick
 * count.  Pages-per-tick = N is the rate of the whole guest: in each batch
 * vCPU i writes its share [i * N / n, (i + 1) * N / n) of the N pages, so
 * that the shares add up to N (a vCPU whose share is empty writes
 * nothing).  As the host may not run all the vCPUs at once, a vCPU that
 * finds up to DG_CATCH_UP batches it has not served serves them one after
 * the other (more than that: it skips them); a single vCPU serves one
 * batch and skips the others, as it always did.  Unpaced, every vCPU
 * writes as fast as it can.  With n = 0 or 1 the guest behaves exactly as
 * the single-vCPU guest always did.
 *
 * The Makefile in this directory turns this file into dirty-guest-sector.h,
 * which the tests include, so building them needs no x86 assembler.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "layout.h"

    .intel_syntax noprefix
    .code16
    .section .text
    .globl _start
_start:
    /* vCPU 0 from SeaBIOS, the others from DG_AP_STUB */
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00

    /* Fast A20 gate */
    in al, 0x92
    or al, 2
    out 0x92, al

    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    ljmp 0x08, offset pmode

    .code32
pmode:
    /*
     * Load every data segment register: KVM without unrestricted guest
     * support emulates while any of them still holds real-mode state.
     */
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax

    /*
     * vCPU i (its APIC ID): ebp, its statistics block; the stack at
     * DG_STACK_TOP + i * DG_STATS_STRIDE, in no page that holds code
     */
    mov eax, [DG_APIC_BASE + DG_APIC_ID]
    shr eax, 24 - 12                /* i * DG_STATS_STRIDE */
    lea ebp, [eax + DG_STATS]
    lea esp, [ebp - DG_STATS + DG_STACK_TOP]

    /* Clear the statistics */
    mov edi, ebp
    mov ecx, DG_STATS_SIZE / 4
    xor eax, eax
    rep stosd
    cmp ebp, DG_STATS
    jne up                          /* the APs */

    mov dx, DG_PM_TIMER_PORT
    in eax, dx
    and eax, DG_PM_TIMER_MASK
    mov [ebp + DG_ST_PM_LAST], eax

    /*
     * Start the other vCPUs at DG_AP_STUB, that is CS = DG_AP_STUB >> 4,
     * IP = 0, where a near jump takes them to _start (the real-mode code
     * works with any CS)
     */
    call vcpus
    dec ecx
    jz up
    mov dword ptr [DG_AP_STUB], 0xe9 | (DG_AP_JMP_REL16 << 8)
    mov edi, DG_APIC_BASE + DG_APIC_ICR_LO
    mov dword ptr [edi], 0xc4500    /* INIT, all excluding self */
    push 10
    pop esi
    call wait_ticks
    mov dword ptr [edi], 0xc4600 | (DG_AP_STUB >> 12) /* SIPI */
    push 2
    pop esi
    call wait_ticks
    mov dword ptr [edi], 0xc4600 | (DG_AP_STUB >> 12)

up:
    mov dword ptr [ebp + DG_ST_MAGIC], DG_MAGIC
    xor ebx, ebx                    /* ebx: batches served when paced */

main_loop:
    cmp byte ptr [params + DG_P_FREEZE], 0
    jne main_loop                   /* frozen: no write, not even time */
    cmp ebp, DG_STATS
    jne 1f
    call poll_timer                 /* vCPU 0 keeps the time */
1:
    mov eax, [params + DG_P_PAGES_PER_TICK]
    test eax, eax
    jnz paced
    mov ecx, 64                     /* unpaced: a batch, then re-read */
    call write_pages
    jmp main_loop

paced:
    mov eax, [DG_STATS + DG_ST_TICKS]   /* vCPU 0's ticks */
    mov esi, [params + DG_P_TICKS_PER_BATCH]
    cmp esi, 1
    jbe 1f
    xor edx, edx
    div esi                         /* eax: batches since boot */
1:
    sub eax, ebx                    /* batches not served yet */
    jz main_loop
    add ebx, eax                    /* one vCPU: serve one, skip the rest */
    call vcpus
    dec ecx
    jz 2f
    cmp eax, DG_CATCH_UP
    ja 2f                           /* too far behind: as one vCPU */
    sub ebx, eax
    inc ebx                         /* several: serve them one by one */
2:
    mov eax, [params + DG_P_PAGES_PER_TICK]
    call share
    sub eax, esi
    xchg ecx, eax                   /* this vCPU's pages per batch */
    jecxz main_loop
    call write_pages
    jmp main_loop

/* ecx: the number of vCPUs, at least 1 */
vcpus:
    mov ecx, [params + DG_P_VCPUS]
    cmp ecx, 1
    adc ecx, 0
    ret

/*
 * This vCPU's share of eax things: esi = i * eax / n, eax = (i + 1) *
 * eax / n; clobbers ecx, edx, edi
 */
share:
    mov edi, eax
    call vcpus
    lea eax, [ebp - DG_STATS]
    shr eax, 12                     /* i */
    push eax
    mul edi
    div ecx
    mov esi, eax
    pop eax
    inc eax
    mul edi
    div ecx
    ret

/* Wait for esi more ticks (vCPU 0); clobbers eax-edx, esi */
wait_ticks:
    add esi, [ebp + DG_ST_TICKS]
1:
    call poll_timer
    cmp [ebp + DG_ST_TICKS], esi
    jb 1b
    ret

/* Account the whole ticks elapsed since the last one; clobbers eax-edx */
poll_timer:
    mov dx, DG_PM_TIMER_PORT
    in eax, dx
    sub eax, [ebp + DG_ST_PM_LAST]
    and eax, DG_PM_TIMER_MASK
    xor edx, edx
    mov ecx, DG_PM_PER_TICK
    div ecx
    add [ebp + DG_ST_TICKS], eax
    mul ecx
    add eax, [ebp + DG_ST_PM_LAST]
    and eax, DG_PM_TIMER_MASK
    mov [ebp + DG_ST_PM_LAST], eax
    ret

/*
 * Write ecx pages of this vCPU's slice at its cursor, advancing it;
 * clobbers eax-edx, esi, edi
 */
write_pages:
    push ebx
    push ecx
    mov eax, [params + DG_P_REGION_PAGES]
    call share
    mov ebx, eax                    /* esi, ebx: the slice */
    pop ecx
    mov edi, [ebp + DG_ST_CURSOR]
    cmp edi, ebx
    jae 1f
    cmp edi, esi
    jae 2f
1:
    mov edi, esi
2:
    mov eax, edi
    shl eax, 12
    add eax, [params + DG_P_REGION_BASE]
    mov edx, [ebp + DG_ST_WRITES]
    mov [eax], edx
    add dword ptr [ebp + DG_ST_WRITES], 1
    adc dword ptr [ebp + DG_ST_WRITES + 4], 0
    inc edi
    cmp edi, ebx
    jb 3f
    mov edi, esi
    inc dword ptr [ebp + DG_ST_PASSES]
3:
    mov [ebp + DG_ST_CURSOR], edi
    loop 2b
    pop ebx
    ret

    .p2align 3
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: flat 32-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: flat 32-bit data */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt

    /* Parameters, patched by the test into its copy of the sector */
    .org DG_PARAMS_OFFSET
params:
    .long DG_DEFAULT_REGION_BASE    /* DG_P_REGION_BASE */
    .long DG_DEFAULT_REGION_PAGES   /* DG_P_REGION_PAGES */
    .long 0                         /* DG_P_PAGES_PER_TICK */
    .long 0                         /* DG_P_TICKS_PER_BATCH */
    .long 0                         /* DG_P_VCPUS */
    .long 0                         /* DG_P_FREEZE */

    .org 510
    .byte 0x55, 0xaa
