; output: elf
;
; pae: a guest with PAE page tables (3 levels, 8-byte entries), on a host
; built for PAE (lguest decided this when host and guest were compiled; here
; the launcher's `pae: true` option says so, and the host runs the CPU with
; CR4.PAE and builds its shadows in the same shape).
;
; Its tables map the first 4 MiB twice, like Linux's: identity and at
; PAGE_OFFSET (0xC0000000). A 32-byte PDPT has two entries (flags P only):
; entry 0 -> PMD0, entry 3 -> PMD3. PMD0[0..1] and PMD3[0..1] share two PTE
; pages of 512 8-byte PTEs (2 MiB each). After LHCALL_NEW_PGTABLE it checks:
;  1. it runs at the PAGE_OFFSET alias of its code;
;  2. A, then D, appear in the low half of PROBE's 8-byte PTE (the high half
;     stays 0);
;  3. a write to HOLE (not present) faults into its #PF handler (error 2,
;     CR2 from lguest_data), which maps the page with LHCALL_SET_PTE — the
;     PTE's high half in the 4th argument (ESI) — and the write is retried;
;  4. it points PMD0[1] at another PTE page, where PROBE maps a different
;     physical page; the shadow still has the old mapping until it says
;     LHCALL_SET_PMD, after which the new one is used;
;  5. it takes RW away from PMD0[1] (and says LHCALL_SET_PMD): PROBE reads,
;     but a write faults in the guest (error 3) although the PTE has RW; the
;     handler gives the PMD entry RW back without a hypercall (an upgrade
;     needs no flush: the fault makes the CPU walk again), and the retried
;     write lands.
;
; On a non-PAE host LHCALL_SET_PMD does not exist: this guest makes one
; first, in linear mode, so such a host kills it at once ("Bad hypercall 13")
; instead of misreading its tables.
;
;   a launcher with { pae: true } (tests/lguest_test.ts runs it)

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PDPT            equ 0x120000            ; 4 entries x 8 bytes (32-byte aligned)
PMD0            equ 0x121000            ; virtual 0..1 GiB
PMD3            equ 0x122000            ; virtual 3..4 GiB
PT0             equ 0x123000            ; virtual 0..2 MiB
PT1             equ 0x124000            ; virtual 2..4 MiB
PT1B            equ 0x125000            ; a second PTE page for 2..4 MiB
PROBE           equ 0x200000            ; PT1's first page
PROBE_B         equ 0x390000            ; where PT1B maps PROBE
HOLE            equ 0x300000            ; not present until the #PF handler maps it
HOLE_PHYS       equ 0x380000

%define PTE_OF(va) (PT0 + ((va) >> 12) * 8)  ; PT0 and PT1 are adjacent: 0..4 MiB

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `pae: 3-level page tables, 8-byte entries\n`
        HCALL LHCALL_SET_PMD, 0, 0      ; a non-PAE host stops us here
        PUTS `the host knows LHCALL_SET_PMD: it is a PAE host\n`

        ; PTEs for 0..4 MiB (two pages of 512): phys | P | RW, high half 0
        mov edi, PT0
        mov eax, PTE_P | PTE_RW
        mov ecx, 1024
.pte:   mov [edi], eax
        mov dword [edi + 4], 0
        add edi, 8
        add eax, 4096
        loop .pte
        mov dword [PTE_OF(HOLE)], 0
        ; PT1B: like PT1, but PROBE -> PROBE_B
        mov esi, PT1
        mov edi, PT1B
        mov ecx, 1024
        rep movsd
        mov dword [PT1B], PROBE_B | PTE_P | PTE_RW
        ; PMDs and the PDPT
        mov edi, PMD0
        xor eax, eax
        mov ecx, 2048
        rep stosd                       ; PMD0 and PMD3 cleared
        mov dword [PMD0], PT0 | 0x063
        mov dword [PMD0 + 8], PT1 | 0x063
        mov dword [PMD3], PT0 | 0x063
        mov dword [PMD3 + 8], PT1 | 0x063
        mov edi, PDPT
        mov ecx, 8
        rep stosd
        mov dword [PDPT], PMD0 | PTE_P
        mov dword [PDPT + 3 * 8], PMD3 | PTE_P
        mov dword [PROBE], 0xaaaa0000   ; markers in the two candidate pages
        mov dword [PROBE_B], 0xbbbb0000
        SHOW "PDPT at ", PDPT
        HCALL LHCALL_NEW_PGTABLE, PDPT
        PUTS `LHCALL_NEW_PGTABLE: on our PAE tables\n`

        mov eax, high + PAGE_OFFSET
        jmp eax
high:   call .here
.here:  pop eax
        mov [eip_seen], eax
        SHOW "running at ", [eip_seen]
        cmp dword [eip_seen], PAGE_OFFSET
        CHECK ae, "code runs through PDPT entry 3 (PAGE_OFFSET)"

        LOAD_GATE 14, pf_handler + PAGE_OFFSET, 0

        ; --- A and D in an 8-byte PTE
        mov eax, [PROBE]
        SHOW "PROBE pte after read:  ", [PTE_OF(PROBE)]
        cmp dword [PTE_OF(PROBE)], PROBE | PTE_P | PTE_RW | PTE_A
        CHECK e, "a read set A"
        mov dword [PROBE + 4], 1
        SHOW "PROBE pte after write: ", [PTE_OF(PROBE)]
        cmp dword [PTE_OF(PROBE)], PROBE | PTE_P | PTE_RW | PTE_A | PTE_D
        CHECK e, "a write set D"
        cmp dword [PTE_OF(PROBE) + 4], 0
        CHECK e, "the high half of the PTE is untouched"

        ; --- a page fault, mapped with a 4-argument SET_PTE
        mov dword [HOLE + 0x20], 0x9ae0001
        cmp dword [pf_count], 1
        CHECK e, "a write to the hole raised #PF"
        cmp dword [pf_cr2], HOLE + 0x20
        CHECK e, "lguest_data.cr2 = the hole + 0x20"
        cmp dword [pf_err], 2
        CHECK e, "error code 2: not present, write"
        cmp dword [HOLE_PHYS + 0x20], 0x9ae0001
        CHECK e, "the retried write landed in the page SET_PTE mapped"

        ; --- SET_PMD: a PMD entry changed
        mov eax, [PROBE]
        mov [probe_seen], eax
        mov dword [PMD0 + 8], PT1B | 0x063
        mov eax, [PROBE]
        mov [probe_stale], eax
        SHOW "PROBE after PMD0[1] changed, before SET_PMD: ", [probe_stale]
        cmp dword [probe_stale], 0xaaaa0000
        CHECK e, "the shadow still maps the old page"
        HCALL LHCALL_SET_PMD, PMD0, 1
        mov eax, [PROBE]
        mov [probe_new], eax
        SHOW "PROBE after LHCALL_SET_PMD: ", [probe_new]
        cmp dword [probe_new], 0xbbbb0000
        CHECK e, "after LHCALL_SET_PMD the new PTE page is used"

        ; --- a PMD entry without RW over a writable PTE
        mov dword [PMD0 + 8], PT1B | PTE_P | PTE_A | PTE_D
        HCALL LHCALL_SET_PMD, PMD0, 1
        mov eax, [PROBE]
        cmp dword [pf_count], 1
        CHECK e, "a read under a PMD entry without RW works"
        mov dword [PROBE], 0xcccc0000
        cmp dword [pf_count], 2
        CHECK e, "a write there raised #PF in the guest, though the PTE has RW"
        cmp dword [pf_err], 3
        CHECK e, "error code 3: present, write"
        cmp dword [PROBE_B], 0xcccc0000
        CHECK e, "after the handler set RW in the PMD entry, the retried write landed"
        jmp finish

; #PF: error code, EIP, CS, EFLAGS. Map HOLE and retry.
pf_handler:
        pushad
        inc dword [pf_count]
        mov eax, [lguest_data + LD_CR2]
        mov [pf_cr2], eax
        mov eax, [esp + 32]
        mov [pf_err], eax
        SHOW "#PF at ", [pf_cr2]
        cmp dword [pf_count], 2
        je .fixdir
        cmp dword [pf_count], 1
        jne .bad
        mov dword [PTE_OF(HOLE)], HOLE_PHYS | PTE_P | PTE_RW
        mov dword [PTE_OF(HOLE) + 4], 0
        HCALL LHCALL_SET_PTE, PDPT, HOLE, HOLE_PHYS | PTE_P | PTE_RW, 0
        popad
        add esp, 4
        jmp lguest_iret
.fixdir:                                ; PROBE's PMD entry: give it RW back, retry
        or dword [PMD0 + 8], PTE_RW
        popad
        add esp, 4
        jmp lguest_iret
.bad:   PUTS `FAIL: an unexpected page fault\n`
        inc dword [checks_failed]
        jmp finish

        align 4
pf_count:       dd 0
pf_cr2:         dd 0
pf_err:         dd 0
eip_seen:       dd 0
probe_seen:     dd 0
probe_stale:    dd 0
probe_new:      dd 0

        LGUEST_DATA lguest_noirq_iret + PAGE_OFFSET
        align 16
        times 4096 db 0
stack_top:

ELF_END
