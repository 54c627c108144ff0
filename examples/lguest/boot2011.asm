; output: elf
;
; boot2011: booting the way lguest guests have since 2011 (commit 5dea1c88,
; "use a special 1:1 linear pagetable mode until first switch"), and what
; follows: the guest's own page tables, the host's demand paging through
; them, and a page fault the guest handles itself.
;
; 1. The guest starts at ring 1 with no page tables of its own: the host fakes
;    an identity mapping ("linear mode"). It says LHCALL_LGUEST_INIT.
; 2. It builds page tables as Linux's head_32.S does: one PTE page mapping the
;    first 4 MiB (flags P|RW, no A/D), hung from two page-directory entries,
;    0 (identity) and 768 (PAGE_OFFSET, 0xC0000000), with flags 0x063. Three
;    pages are special: PROBE (ordinary), RO_PAGE (read-only) and HOLE (not
;    present). Then LHCALL_NEW_PGTABLE: linear mode ends, the host walks these.
; 3. It jumps to the PAGE_OFFSET alias of its own code and runs there.
; 4. A read, then a write, of PROBE: the host sets A, then D, in the guest's
;    own PTE (the shadow the CPU walks stays read-only until D is set).
; 5. Its #PF handler (LHCALL_LOAD_IDT_ENTRY, vector 14) reads CR2 from
;    lguest_data.cr2 — ring 1 cannot `mov cr2` — and the error code from the
;    frame. A write to RO_PAGE faults with error 3 (present, write) and is
;    skipped; a write to HOLE faults with error 2 (not present, write), the
;    handler maps HOLE to another physical page (its PTE, then
;    LHCALL_SET_PTE) and IRETs, and the write is retried and lands; a read
;    with no page-directory entry faults with error 0 and is skipped.
; 6. Permissions are checked at both levels, as the CPU checks them: under a
;    page-directory entry without RW, a read works but a write through a
;    writable PTE faults in the guest (error 3). The handler gives the entry
;    RW without a hypercall — on hardware a permission upgrade needs no TLB
;    flush, since the fault itself makes the CPU walk again — and the retried
;    write lands: the host's shadow takes the entry's new permissions.
;
;   deno run -A repl.ts --run 16 examples/lguest/boot2011.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PGDIR           equ 0x110000            ; the guest's page directory
PTES            equ 0x111000            ; its one PTE page: virtual 0..4 MiB
PROBE           equ 0x200000            ; an ordinary page: watch A and D appear
RO_PAGE         equ 0x201000            ; mapped read-only
HOLE            equ 0x300000            ; not present until the #PF handler maps it...
HOLE_PHYS       equ 0x380000            ; ...to this physical page
NOPGD             equ 0x800000            ; no page-directory entry at all
RODIR           equ 0x400000            ; 4..8 MiB: a page-directory entry without RW
RO_TARGET       equ RODIR + 0x390000    ; -> physical 0x390000 through the PTE page

%define PTE_OF(va) (PTES + ((va) >> 12) * 4)

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `boot2011: started in the host's linear mode (virtual == physical)\n`

        ; PTEs for 0..4 MiB: phys | P | RW, as head_32.S writes them
        FILL_PTES PTES, PTE_P | PTE_RW, 1024
        mov dword [PTE_OF(RO_PAGE)], RO_PAGE | PTE_P
        mov dword [PTE_OF(HOLE)], 0
        ; the page directory: entries 0 and 768 share the PTE page
        mov edi, PGDIR
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PGDIR], PTES | 0x063
        mov dword [PGDIR + (PAGE_OFFSET >> 22) * 4], PTES | 0x063
        SHOW "page directory at ", PGDIR

        HCALL LHCALL_NEW_PGTABLE, PGDIR
        PUTS `LHCALL_NEW_PGTABLE: linear mode is over\n`

        ; go on at the PAGE_OFFSET alias of the code
        mov eax, high + PAGE_OFFSET
        jmp eax
high:   call .here
.here:  pop eax
        mov [eip_seen], eax
        SHOW "running at ", [eip_seen]
        cmp dword [eip_seen], PAGE_OFFSET
        CHECK ae, "code runs through the PAGE_OFFSET mapping"

        mov dword [alias_word], 0
        mov dword [alias_word + PAGE_OFFSET], 0xc0ffee01
        cmp dword [alias_word], 0xc0ffee01
        CHECK e, "a write at 0xc0000000+x is seen at x"

        LOAD_GATE 14, pf_handler + PAGE_OFFSET, 0
        PUTS `#PF handler installed (vector 14)\n`

        ; --- A and D in the guest's own PTE
        SHOW "PROBE pte before:      ", [PTE_OF(PROBE)]
        cmp dword [PTE_OF(PROBE)], PROBE | PTE_P | PTE_RW
        CHECK e, "PROBE's PTE starts with neither A nor D"
        mov eax, [PROBE]
        SHOW "PROBE pte after read:  ", [PTE_OF(PROBE)]
        cmp dword [PTE_OF(PROBE)], PROBE | PTE_P | PTE_RW | PTE_A
        CHECK e, "a read made the host set A"
        mov dword [PROBE], 0x12345678
        SHOW "PROBE pte after write: ", [PTE_OF(PROBE)]
        cmp dword [PTE_OF(PROBE)], PROBE | PTE_P | PTE_RW | PTE_A | PTE_D
        CHECK e, "a write made the host set D"

        ; --- a read-only page: reading works, writing faults (error 3) and is skipped
        mov eax, [RO_PAGE]
        mov dword [pf_resume], .after_ro + PAGE_OFFSET
        mov dword [RO_PAGE], 1
.after_ro:
        cmp dword [pf_count], 1
        CHECK e, "a write to the read-only page raised #PF in the guest"
        cmp dword [pf_cr2], RO_PAGE
        CHECK e, "lguest_data.cr2 = the read-only page"
        cmp dword [pf_err], 3
        CHECK e, "error code 3: present, write, supervisor"
        cmp dword [pf_cs], KERNEL_CS
        CHECK e, "the frame's CS is the guest kernel's (0x61)"

        ; --- a page that is not present: the handler maps it and the write is retried
        mov dword [pf_resume], 0
        mov dword [HOLE + 0x10], 0x600df00d
        cmp dword [pf_count], 2
        CHECK e, "a write to the hole raised #PF"
        cmp dword [pf_cr2], HOLE + 0x10
        CHECK e, "lguest_data.cr2 = the hole + 0x10"
        cmp dword [pf_err], 2
        CHECK e, "error code 2: not present, write, supervisor"
        cmp dword [HOLE_PHYS + 0x10], 0x600df00d
        CHECK e, "the retried write landed in the page the handler mapped"
        SHOW "HOLE pte after the retry: ", [PTE_OF(HOLE)]
        cmp dword [PTE_OF(HOLE)], HOLE_PHYS | PTE_P | PTE_RW | PTE_A | PTE_D
        CHECK e, "the host set A and D in the new PTE"

        ; --- no page-directory entry: a read faults with error 0 and is skipped
        mov dword [pf_resume], .after_far + PAGE_OFFSET
        mov eax, [NOPGD]
.after_far:
        cmp dword [pf_count], 3
        CHECK e, "a read with no page-directory entry raised #PF"
        cmp dword [pf_cr2], NOPGD
        CHECK e, "lguest_data.cr2 = 0x00800000"
        cmp dword [pf_err], 0
        CHECK e, "error code 0: not present, read, supervisor"

        ; --- a directory entry without RW over a writable PTE
        mov dword [PGDIR + (RODIR >> 22) * 4], PTES | PTE_P | PTE_A | PTE_D
        mov eax, [RO_TARGET]
        cmp dword [pf_count], 3
        CHECK e, "a read under a page-directory entry without RW works"
        mov dword [pf_resume], 0
        mov dword [pf_fixdir], 1
        mov dword [RO_TARGET], 0x0dd0c0de
        cmp dword [pf_count], 4
        CHECK e, "a write there raised #PF in the guest, though the PTE has RW"
        cmp dword [pf_cr2], RO_TARGET
        CHECK e, "lguest_data.cr2 = the write's address"
        cmp dword [pf_err], 3
        CHECK e, "error code 3: present, write, supervisor"
        cmp dword [RO_TARGET - RODIR], 0x0dd0c0de
        CHECK e, "after the handler set RW in the entry, the retried write landed"

        SHOW "page faults handled: ", [pf_count]
        jmp finish

; The #PF handler, entered at ring 1 through an interrupt gate with the
; frame: error code, EIP, CS, EFLAGS.
pf_handler:
        pushad
        inc dword [pf_count]
        mov eax, [lguest_data + LD_CR2]
        mov [pf_cr2], eax
        mov eax, [esp + 32]
        mov [pf_err], eax
        mov eax, [esp + 40]
        mov [pf_cs], eax
        PUTS "#PF at "
        mov eax, [pf_cr2]
        call early_puthex
        PUTS " error "
        mov eax, [pf_err]
        call early_puthex
        mov eax, [pf_resume]
        test eax, eax
        jz .fixdir
        PUTS `: skipping the instruction\n`
        mov eax, [pf_resume]
        mov [esp + 36], eax             ; resume past the faulting instruction
        jmp .out
.fixdir:
        cmp dword [pf_fixdir], 0
        je .map
        PUTS `: giving the page-directory entry RW and retrying\n`
        or dword [PGDIR + (RODIR >> 22) * 4], PTE_RW
        mov dword [pf_fixdir], 0
        jmp .out
.map:   PUTS `: mapping the page (PTE + LHCALL_SET_PTE) and retrying\n`
        mov dword [PTE_OF(HOLE)], HOLE_PHYS | PTE_P | PTE_RW
        HCALL LHCALL_SET_PTE, PGDIR, HOLE, HOLE_PHYS | PTE_P | PTE_RW
.out:   popad
        add esp, 4                      ; the error code
        jmp lguest_iret

        align 4
pf_count:       dd 0
pf_cr2:         dd 0
pf_err:         dd 0
pf_cs:          dd 0
pf_resume:      dd 0
pf_fixdir:      dd 0
eip_seen:       dd 0
alias_word:     dd 0

        LGUEST_DATA lguest_noirq_iret + PAGE_OFFSET
        align 16
        times 4096 db 0
stack_top:

ELF_END
