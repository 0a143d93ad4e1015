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
 * host may change them while the guest runs; statistics are kept at
 * DG_STATS, just past the sector, where the host reads them:
 *
 *   +0  u64 page writes since boot
 *   +8  u32 ticks since boot
 *   +12 u32 completed passes over the region
 *   +16 u32 DG_MAGIC once the guest is running
 *   +20 u32 page cursor (index in the region of the next page to write)
 *   +24 u32 PM timer value at the last tick
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
    mov esp, 0x7c00

    /* Clear the statistics, then say we are up */
    mov edi, DG_STATS
    mov ecx, DG_STATS_SIZE / 4
    xor eax, eax
    rep stosd
    mov dx, DG_PM_TIMER_PORT
    in eax, dx
    and eax, DG_PM_TIMER_MASK
    mov [DG_STATS + DG_ST_PM_LAST], eax
    mov dword ptr [DG_STATS + DG_ST_MAGIC], DG_MAGIC
    xor ebx, ebx                    /* ebx: tick last served when paced */

main_loop:
    call poll_timer
    mov ecx, [params + DG_P_PAGES_PER_TICK]
    test ecx, ecx
    jnz paced
    mov ecx, 64                     /* unpaced: a batch, then re-read */
    call write_pages
    jmp main_loop

paced:
    mov eax, [DG_STATS + DG_ST_TICKS]
    mov esi, [params + DG_P_TICKS_PER_BATCH]
    cmp esi, 1
    jbe 1f
    xor edx, edx
    div esi                         /* eax: batches since boot */
1:
    cmp eax, ebx
    je main_loop
    mov ebx, eax
    call write_pages
    jmp main_loop

/* Account the whole ticks elapsed since the last one; clobbers eax-edx */
poll_timer:
    mov dx, DG_PM_TIMER_PORT
    in eax, dx
    sub eax, [DG_STATS + DG_ST_PM_LAST]
    and eax, DG_PM_TIMER_MASK
    xor edx, edx
    mov ecx, DG_PM_PER_TICK
    div ecx
    add [DG_STATS + DG_ST_TICKS], eax
    mul ecx
    add eax, [DG_STATS + DG_ST_PM_LAST]
    and eax, DG_PM_TIMER_MASK
    mov [DG_STATS + DG_ST_PM_LAST], eax
    ret

/* Write ecx pages at the cursor, advancing it; clobbers eax, edx, edi */
write_pages:
    mov edi, [DG_STATS + DG_ST_CURSOR]
    cmp edi, [params + DG_P_REGION_PAGES]
    jb 2f
    xor edi, edi
2:
    mov eax, edi
    shl eax, 12
    add eax, [params + DG_P_REGION_BASE]
    mov edx, [DG_STATS + DG_ST_WRITES]
    mov [eax], edx
    add dword ptr [DG_STATS + DG_ST_WRITES], 1
    adc dword ptr [DG_STATS + DG_ST_WRITES + 4], 0
    inc edi
    cmp edi, [params + DG_P_REGION_PAGES]
    jb 3f
    xor edi, edi
    inc dword ptr [DG_STATS + DG_ST_PASSES]
3:
    mov [DG_STATS + DG_ST_CURSOR], edi
    loop 2b
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

    .org 510
    .byte 0x55, 0xaa
