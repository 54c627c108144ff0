; output: elf
;
; paging: an lguest guest that leaves linear mode, for watching shadow page
; tables work.
;
; It starts like hello, on the host's made-up 1:1 map (linear mode), then
; builds page tables of its own — the first 4 MiB of RAM mapped twice, at 0 and
; at PAGE_OFFSET (0xc0000000), as Linux's early boot does — and hands them to
; the host with LHCALL_NEW_PGTABLE. From then on it runs at its high address:
;
;  1. it installs a page-fault handler (LHCALL_LOAD_IDT_ENTRY) and reads an
;     address it has not mapped: the host finds no guest PTE and reflects the
;     fault into the guest, which maps the page (a PTE write announced with
;     LHCALL_SET_PTE) and returns to retry; the retry faults once more, and
;     this time the host fills the shadow from the guest's new entry;
;  2. it drops its identity mapping (LHCALL_SET_PGD), as Linux does once it
;     runs high;
;  3. it switches to a second address space holding only the kernel half, as
;     for a new process (a second shadow slot), and back;
;  4. it powers off.
;
;   deno run -A repl.ts 16 examples/lguest/paging.elf
;   (lguest) break hcall new_pgtable
;   (lguest) c
;   (lguest) pgdir guest          the tables the guest built
;   (lguest) step                 the host leaves linear mode
;   (lguest) pgdirs
;   (lguest) translate 0xc0100000

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PAGE_OFFSET     equ 0xc0000000
DEMAND_ADDR     equ 0xd0000000      ; mapped by the fault handler, on first touch
PTE_P           equ 0x001
PTE_RW          equ 0x002
PGD_FLAGS       equ 0x067           ; _PAGE_TABLE: P RW US A D

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        mov esi, msg_linear
        call early_puts

        ; pt0: frames 0..1023 (the first 4 MiB), present and writable.
        mov edi, pt0
        mov eax, PTE_P | PTE_RW
        mov ecx, 1024
.fill:  stosd
        add eax, 0x1000
        loop .fill
        ; The same table at 0 (the code running now) and at PAGE_OFFSET; an
        ; empty table for DEMAND_ADDR's 4 MiB.
        mov dword [pgdir + 0 * 4], pt0 + PGD_FLAGS
        mov dword [pgdir + (PAGE_OFFSET >> 22) * 4], pt0 + PGD_FLAGS
        mov dword [pgdir + (DEMAND_ADDR >> 22) * 4], pt1 + PGD_FLAGS
new_pgtable:
        HCALL LHCALL_NEW_PGTABLE, pgdir

        ; Jump to the high alias of the next instruction.
        mov eax, high + PAGE_OFFSET
        jmp eax
high:
        add esp, PAGE_OFFSET
        mov esi, msg_high + PAGE_OFFSET
        call early_puts

        ; Vector 14: a 32-bit trap gate (present, DPL 0) at pf_handler's high address.
        mov eax, pf_handler + PAGE_OFFSET
        mov ecx, eax
        and ecx, 0xffff
        or ecx, KERNEL_CS << 16
        mov edx, eax
        and edx, 0xffff0000
        or edx, 0x8f00
        mov ebx, 14
        mov eax, LHCALL_LOAD_IDT_ENTRY
        int 0x1f

        mov esi, msg_touch + PAGE_OFFSET
        call early_puts
touch:
        mov eax, [DEMAND_ADDR]          ; not mapped: the guest's handler maps it
        call early_puthex
        mov al, 10
        call early_putc

        ; Linux drops the identity map once it runs high: so do we.
        mov dword [pgdir + PAGE_OFFSET], 0
        HCALL LHCALL_SET_PGD, pgdir, 0

        ; A second address space with only the kernel half, and back.
        mov eax, [pgdir + PAGE_OFFSET + (PAGE_OFFSET >> 22) * 4]
        mov [pgdir2 + PAGE_OFFSET + (PAGE_OFFSET >> 22) * 4], eax
switch:
        HCALL LHCALL_NEW_PGTABLE, pgdir2
        mov esi, msg_second + PAGE_OFFSET
        call early_puts
        HCALL LHCALL_NEW_PGTABLE, pgdir

        mov esi, bye                    ; SHUTDOWN takes a guest-physical address
        call poweroff

; The page-fault handler: map the faulting page to demand_frame and retry.
pf_handler:
        push eax
        push ebx
        push ecx
        push edx
        mov eax, [lguest_data + PAGE_OFFSET + LD_CR2]   ; the host put CR2 here
        mov ebx, eax
        shr ebx, 12
        and ebx, 0x3ff
        mov ecx, demand_frame + PTE_P + PTE_RW
        mov [pt1 + PAGE_OFFSET + ebx * 4], ecx
        mov edx, ecx                    ; LHCALL_SET_PTE(pgdir, vaddr, pte)
        mov ecx, eax
        and ecx, 0xfffff000
        mov ebx, pgdir
        mov eax, LHCALL_SET_PTE
        int 0x1f
        pop edx
        pop ecx
        pop ebx
        pop eax
        add esp, 4                      ; the error code
        iret

msg_linear: db "linear mode: running on the host's 1:1 map", 10, 0
msg_high:   db "own page tables: running at 0xc01xxxxx", 10, 0
msg_touch:  db "reading 0xd0000000: ", 0
msg_second: db "second address space: kernel half only", 10, 0
bye:        db "Power down", 0

        LGUEST_DATA 0
        align 16
        times 4096 db 0
stack_top:

        align 4096
pgdir:  times 1024 dd 0
pgdir2: times 1024 dd 0
pt0:    times 1024 dd 0
pt1:    times 1024 dd 0
demand_frame:
        dd 0x600dc0de
        times 1023 dd 0

ELF_END
