; pae: three-level PAE paging (CR4.PAE) — a page-directory-pointer table of
; four entries, page directories and page tables of 512 eight-byte entries, 2
; MiB pages (PS in the PDE) next to 4 KiB pages, faults at each level with
; their error codes and CR2, and the accessed and dirty bits in the 64-bit
; entries. SDM Vol. 3A 4.4 (PAE paging), 4.7 (#PF error code), 4.8 (A/D).
;
; Map (linear -> physical):
;   0x00000000-0x001fffff  PD0[0] -> PT_A: 4 KiB pages, identity (code, stacks)
;   0x00200000-0x003fffff  PD0[1]: 2 MiB page, identity (the paging structures)
;   0x00400000-0x005fffff  PD0[2] -> PT_B: 4 KiB pages, identity but for the test pages
;                          0x401000 (not present), 0x402000 (user read-only)
;   0x00600000-0x007fffff  PD0[3]: 2 MiB supervisor page -> 0x400000
;   0x00800000             PD0[4]: not present
;   0x40000000             PDPT[1] -> PD1[0]: 2 MiB user page -> 0x400000
;   0x80000000             PDPT[2]: not present

%include "tests/guests/include/guest.inc"

PDPT            equ 0x310000        ; 32-byte aligned
PD0             equ 0x311000
PD1             equ 0x312000
PT_A            equ 0x313000
PT_B            equ 0x314000
%define PTEB(l) (PT_B + (((l) - 0x400000) >> 9))

main:
        mov edi, PDPT                               ; clear the structures
        xor eax, eax
        mov ecx, 5 * 1024
        rep stosd
        mov dword [PDPT + 0], PD0 | 1               ; PDPTEs: P only (R/W, U/S are reserved)
        mov dword [PDPT + 8], PD1 | 1
        mov dword [PD0 + 0], PT_A | 7
        mov dword [PD0 + 8], 0x200000 | 0x83        ; PS W P
        mov dword [PD0 + 16], PT_B | 7
        mov dword [PD0 + 24], 0x400000 | 0x83       ; PS W P, supervisor
        mov dword [PD1 + 0], 0x400000 | 0x87        ; PS U W P
        mov edi, PT_A                               ; identity 0-2 MiB
        mov eax, 7
        mov ecx, 512
.a:     mov [edi], eax
        add edi, 8
        add eax, 0x1000
        loop .a
        mov edi, PT_B                               ; identity 4-6 MiB, then the test pages
        mov eax, 0x400000 | 7
        mov ecx, 512
.b:     mov [edi], eax
        add edi, 8
        add eax, 0x1000
        loop .b
        mov dword [PTEB(0x401000)], 0x401000 | 6    ; not present
        mov dword [PTEB(0x402000)], 0x402000 | 5    ; user read-only
        mov dword [PTEB(0x403000)], 0x403000 | 7    ; fresh: A/D check
        mov dword [0x400010], 0x50414531            ; known words in the frames
        mov dword [0x404010], 0x50414532
        mov dword [0x405010], 0x50414533
        mov eax, cr4
        or eax, CR4_PAE
        mov cr4, eax
        mov eax, PDPT
        mov cr3, eax
        mov eax, cr0
        or eax, CR0_PG
        mov cr0, eax

; ---- translations ---------------------------------------------------------------
        ATTEMPT "read_4k", mov eax, [0x400010]
        REPORT "read_4k.eax", eax
        ATTEMPT "read_2m_sup", mov eax, [0x600000 + 0x4010]     ; -> 0x404010
        REPORT "read_2m_sup.eax", eax
        ATTEMPT "read_2m_high", mov eax, [0x40000000 + 0x5010]  ; -> 0x405010
        REPORT "read_2m_high.eax", eax
        ATTEMPT "write_2m_high", mov dword [0x40000000 + 0x5014], 0xabcd1234
        REPORT "write_2m_high.phys", [0x405014]

; ---- faults at each level ------------------------------------------------------------
        ATTEMPT "pdpte_np", mov eax, [0x80000000]               ; err 0
        ATTEMPT "pde_np", mov eax, [0x800000]                   ; err 0
        ATTEMPT "pte_np", mov [0x401000], eax                   ; err 2
        ATTEMPT3 "u_pdpte_np", mov eax, [0x80000004]            ; err 4
        ATTEMPT3 "u_read_2m_sup", mov eax, [0x600000]           ; err 5
        ATTEMPT3 "u_write_4k_ro", mov [0x402000], eax           ; err 7
        ATTEMPT3 "u_read_4k_ro", mov eax, [0x402000]
        ATTEMPT3 "u_write_2m_user", mov [0x40000000 + 0x5018], eax

; ---- accessed and dirty bits in 8-byte entries -------------------------------------------
        REPORT "ad.pte_before", [PTEB(0x403000)]
        ATTEMPT "ad_read", mov eax, [0x403000]
        REPORT "ad.pte_after_read", [PTEB(0x403000)]
        ATTEMPT "ad_write", mov [0x403000], eax
        REPORT "ad.pte_after_write", [PTEB(0x403000)]
        REPORT "ad.pte_high", [PTEB(0x403000) + 4]              ; upper half untouched
        REPORT "ad.pde_table", [PD0 + 16]                       ; A, never D
        REPORT "ad.pde_2m_sup", [PD0 + 24]                      ; read only: A
        REPORT "ad.pde_2m_high", [PD1 + 0]                      ; written: A and D
        REPORT "ad.pdpte", [PDPT + 0]                           ; PDPTEs have no A/D bits
        ret
