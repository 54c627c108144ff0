; paging: two-level paging and the TLB — page-fault error codes and CR2 for
; every combination of privilege (CPL 0 / 3), access (read / write / fetch),
; CR0.WP and presence, at the PDE and the PTE level; accessed and dirty bits;
; 4 MiB pages (CR4.PSE); what a stale TLB entry does before and after INVLPG
; or a CR3 reload; a faulting instruction restarting once the handler maps the
; page; and a REP MOVSD that faults part-way and resumes.
;
; The #PF error code (SDM Vol. 3A 4.7): bit 0 P (0: not present, 1:
; protection), bit 1 W/R (write), bit 2 U/S (CPL 3). CR2 holds the linear
; address. The access rights of a 4 KiB page are the AND of PDE and PTE
; (Vol. 3A 4.6): a user access needs U/S=1 in both, a user write R/W=1 in
; both; a supervisor write to a read-only page faults only with CR0.WP=1.

%include "tests/guests/include/guest.inc"

; Pages in the second 4 MiB (PDE 1): linear = physical unless remapped.
PG_RO_U         equ 0x400000        ; present, user, read-only
PG_RW_U         equ 0x401000        ; present, user, writable
PG_RO_S         equ 0x402000        ; present, supervisor, read-only
PG_RW_S         equ 0x403000        ; present, supervisor, writable
PG_NP           equ 0x404000        ; not present
PG_RO_U2        equ 0x405000        ; present, user, read-only (dirty-bit check)
PG_STALE        equ 0x406000        ; remapped behind the TLB's back
PG_NEW          equ 0x407000        ; (the frame it is remapped to)
PG_FIX          equ 0x408000        ; not present until the #PF handler maps it
MV_DST          equ 0x409000        ; REP MOVSD: destination starts here ...
MV_NP           equ 0x40a000        ; ... and runs into this not-present page
MV_SRC          equ 0x40b000        ; REP MOVSD source
; Other page directory entries.
LIN_PDE_NP      equ 0x00800000      ; PDE 2: not present
LIN_PDE_SUP     equ 0x00c00000      ; PDE 3: supervisor-only PDE over a user PTE
LIN_PDE_RO      equ 0x01000000      ; PDE 4: read-only PDE over a writable PTE
LIN_PSE         equ 0x01400000      ; PDE 5: 4 MiB page -> physical 0x400000
LIN_PSE_RO      equ 0x01800000      ; PDE 6: 4 MiB page, user read-only -> 0x400000
LIN_AD          equ 0x01c00000      ; PDE 7: fresh PDE and PTE for the A/D bits
PT3             equ PT_ADDR + 0x2000
PT4             equ PT_ADDR + 0x3000
PT7             equ PT_ADDR + 0x4000
%define PTE(l) (PT_ADDR + 0x1000 + (((l) - 0x400000) >> 10))
%define PDE(n) (PD_ADDR + (n) * 4)

main:
        call map_identity
        mov edi, PT3
        xor eax, eax
        mov ecx, 3 * 1024
        rep stosd
        mov dword [PTE(PG_RO_U)], PG_RO_U | 5
        mov dword [PTE(PG_RW_U)], PG_RW_U | 7
        mov dword [PTE(PG_RO_S)], PG_RO_S | 1
        mov dword [PTE(PG_RW_S)], PG_RW_S | 3
        mov dword [PTE(PG_NP)], PG_NP | 6
        mov dword [PTE(PG_RO_U2)], PG_RO_U2 | 5
        mov dword [PDE(3)], PT3 | 3                 ; P W, no U
        mov dword [PT3], 0x40c000 | 7
        mov dword [PDE(4)], PT4 | 5                 ; P U, no W
        mov dword [PT4], 0x40d000 | 7
        mov dword [PDE(7)], PT7 | 7
        mov dword [PT7], 0x40f000 | 7
        ; The top page of the TSS.ESP0 stack is supervisor-only: every exception
        ; and INT from ring 3 below pushes its frame there, an implicit supervisor
        ; access that U/S=0 must not stop (SDM Vol. 3A 4.6).
        and dword [PT_ADDR + ((K0INT_TOP - 0x1000) >> 10)], ~4
        mov eax, PD_ADDR
        mov cr3, eax
        mov eax, cr0
        or eax, CR0_PG
        mov cr0, eax

; ---- supervisor (CPL 0), CR0.WP = 0 ------------------------------------------
        ATTEMPT "s_read_np", mov eax, [PG_NP + 0x10]         ; err 0
        ATTEMPT "s_write_np", mov [PG_NP + 0x20], eax        ; err 2
        ATTEMPT "s_write_ro_wp0", mov dword [PG_RO_S], 0x11111111
        REPORT "s_write_ro_wp0.value", [PG_RO_S]
        ATTEMPT "s_write_ro_user_wp0", mov dword [PG_RO_U], 0x22222222
        ATTEMPT "s_read_pde_np", mov eax, [LIN_PDE_NP]       ; err 0, at the PDE
        ATTEMPT "s_write_pde_np", mov [LIN_PDE_NP + 0x123], eax
        ATTEMPT "s_read_pde_sup", mov eax, [LIN_PDE_SUP]
        ATTEMPT "s_write_pde_ro_wp0", mov [LIN_PDE_RO], eax
        ATTEMPT "s_read_user", mov eax, [PG_RW_U]            ; no SMAP: allowed
        ; a dword read straddling into a not-present page: CR2 = the first byte there
        ATTEMPT "s_read_split", mov eax, [PG_NP - 2]
        ; a jump to a not-present page faults on the fetch: EIP = CR2 = the target
        mov eax, PG_NP
        ATTEMPT "s_fetch_np", jmp eax
        ; an instruction whose immediate lies in a not-present page: EIP = its start
        mov dword [PG_NP - 4], 0x78b89090                     ; nop nop mov eax, 0x...78
        mov eax, PG_NP - 4
        ATTEMPT "s_fetch_split", jmp eax
        REPORT "s_fetch_split.insn", PG_NP - 2

; ---- supervisor, CR0.WP = 1 ----------------------------------------------------
        mov eax, cr0
        or eax, CR0_WP
        mov cr0, eax
        ATTEMPT "s_write_ro_wp1", mov dword [PG_RO_S], 0x33333333       ; err 3
        ATTEMPT "s_write_ro_user_wp1", mov dword [PG_RO_U], 0x33333333  ; err 3
        ATTEMPT "s_write_pde_ro_wp1", mov [LIN_PDE_RO], eax             ; err 3
        ATTEMPT "s_write_rw_wp1", mov [PG_RW_S], eax
        REPORT "s_write_ro_wp1.value", [PG_RO_S]                        ; unchanged
        mov eax, cr0
        and eax, ~CR0_WP
        mov cr0, eax

; ---- user (CPL 3) ---------------------------------------------------------------
        ATTEMPT3 "u_read_sup", mov eax, [PG_RO_S]            ; err 5
        ATTEMPT3 "u_write_ro", mov [PG_RO_U], eax            ; err 7 (WP does not matter)
        ATTEMPT3 "u_write_sup", mov [PG_RW_S], eax           ; err 7
        ATTEMPT3 "u_read_np", mov eax, [PG_NP]               ; err 4
        ATTEMPT3 "u_write_np", mov [PG_NP], eax              ; err 6
        ATTEMPT3 "u_read_ro", mov eax, [PG_RO_U]
        ATTEMPT3 "u_write_rw", mov [PG_RW_U], eax
        ATTEMPT3 "u_read_pde_sup", mov eax, [LIN_PDE_SUP]    ; PDE U=0: err 5
        ATTEMPT3 "u_write_pde_ro", mov [LIN_PDE_RO], eax     ; PDE W=0: err 7
        ATTEMPT3 "u_read_pde_ro", mov eax, [LIN_PDE_RO]
        ATTEMPT3 "u_read_pde_np", mov eax, [LIN_PDE_NP]      ; err 4
        mov eax, PG_RO_S
        ATTEMPT3 "u_fetch_sup", jmp eax                      ; fetch is a read: err 5
        ; push onto a supervisor page: the stack access is a user write
        mov dword [user_esp], PG_RW_S + 0x100
        ATTEMPT3 "u_push_sup", push eax                      ; err 7, CR2 = ESP - 4
        mov dword [user_esp], USTACK_TOP

; ---- accessed and dirty bits (SDM Vol. 3A 4.8) ------------------------------------
        REPORT "ad.pte_before", [PT7]
        REPORT "ad.pde_before", [PDE(7)]
        ATTEMPT "ad_read", mov eax, [LIN_AD]
        REPORT "ad.pte_after_read", [PT7]                    ; A set, D clear
        REPORT "ad.pde_after_read", [PDE(7)]                 ; A set
        ATTEMPT "ad_write", mov [LIN_AD + 4], eax
        REPORT "ad.pte_after_write", [PT7]                   ; A and D
        REPORT "ad.pde_after_write", [PDE(7)]                ; no D in a PDE that maps a table
        ATTEMPT3 "ad_denied_write", mov [PG_RO_U2], eax      ; faults: D must stay clear
        REPORT "ad.denied_pte", [PTE(PG_RO_U2)]

; ---- 4 MiB pages (CR4.PSE) ----------------------------------------------------------
        mov dword [PDE(5)], 0x400000 | 0x87                  ; PS U W P
        mov dword [PDE(6)], 0x400000 | 0x85                  ; PS U P (read-only)
        mov dword [0x40e000], 0x50534521
        ; With CR4.PSE=0 the PS bit is ignored (SDM Vol. 3A 4.3): the PDE points at a
        ; page table, here the frame at 0x400000, whose entry 0xe (zero) is not present.
        ATTEMPT "pse_off", mov eax, [LIN_PSE + 0xe000]
        mov eax, cr4
        or eax, CR4_PSE
        mov cr4, eax
        ATTEMPT "pse_read", mov eax, [LIN_PSE + 0xe000]
        REPORT "pse_read.eax", eax
        REPORT "pse.pde_after_read", [PDE(5)]                ; A set
        ATTEMPT "pse_write", mov dword [LIN_PSE + 0xe004], 0x12345678
        REPORT "pse.phys", [0x40e004]                        ; written through the 4 MiB page
        REPORT "pse.pde_after_write", [PDE(5)]               ; A and D
        ATTEMPT3 "pse_user_write_ro", mov [LIN_PSE_RO + 0x3ffffc], eax   ; err 7
        ATTEMPT3 "pse_user_read_ro", mov eax, [LIN_PSE_RO + 0x3ffffc]

; ---- the TLB: stale entries until INVLPG or a CR3 load (SDM Vol. 3A 4.10.4) ----------
        mov dword [PG_STALE], 0x4f4c4431                     ; "OLD1" in the old frame
        mov dword [PG_NEW], 0x4e455731                       ; "NEW1" in the new frame
        mov eax, [PG_STALE]                                  ; cache the translation
        mov dword [PTE(PG_STALE)], PG_NEW | 7                ; remap without INVLPG
        mov ebx, [PG_STALE]                                  ; still the old frame
        invlpg [PG_STALE]
        mov ecx, [PG_STALE]                                  ; now the new one
        mov dword [PTE(PG_STALE)], PG_STALE | 7              ; map back ...
        mov edx, [PG_STALE]                                  ; ... still cached: new
        mov esi, cr3
        mov cr3, esi                                         ; flush everything
        mov esi, [PG_STALE]                                  ; old again
        mov dword [PTE(PG_STALE)], 0                         ; not present ...
        mov edi, [PG_STALE]                                  ; ... but still cached
        REPORT "stale.first", eax
        REPORT "stale.remapped", ebx
        REPORT "stale.after_invlpg", ecx
        REPORT "stale.mapped_back", edx
        REPORT "stale.after_cr3", esi
        REPORT "stale.not_present", edi
        invlpg [PG_STALE]
        ATTEMPT "stale_np_invlpg", mov eax, [PG_STALE]       ; now it faults
        mov dword [PTE(PG_STALE)], PG_STALE | 7

; ---- the faulting instruction restarts after the handler maps the page ---------------
        mov dword [PG_FIX], 0x46495821                       ; content, then unmap
        mov dword [PTE(PG_FIX)], PG_FIX | 6
        invlpg [PG_FIX]
        mov dword [exc_hook], fix_hook
        xor eax, eax
        ATTEMPT "pf_restart", mov eax, [PG_FIX + 0]
        mov dword [exc_hook], 0
        REPORT "pf_restart.eax", eax
        REPORT "pf_restart.count", [fix_count]
        REPORT "pf_restart.pte", [PTE(PG_FIX)]

; ---- REP MOVSD into a not-present page: precise progress, then completion ------------
        mov dword [MV_SRC + 0], 0x11111111
        mov dword [MV_SRC + 4], 0x22222222
        mov dword [MV_SRC + 8], 0x33333333
        mov dword [MV_SRC + 12], 0x44444444
        mov dword [MV_SRC + 16], 0x55555555
        mov dword [PTE(MV_NP)], MV_NP | 6
        invlpg [MV_NP]
        mov dword [exc_hook], movs_hook
        mov esi, MV_SRC
        mov edi, MV_NP - 8
        mov ecx, 5
        ATTEMPT "movs", rep movsd
        mov dword [exc_hook], 0
        REPORT "movs.fault_ecx", [movs_ecx]                  ; 3 left
        REPORT "movs.fault_esi", [movs_esi]                  ; 2 copied
        REPORT "movs.fault_edi", [movs_edi]
        REPORT "movs.ecx", ecx                               ; done
        REPORT "movs.esi", esi
        REPORT "movs.edi", edi
        REPORT "movs.d0", [MV_NP - 8]
        REPORT "movs.d1", [MV_NP - 4]
        REPORT "movs.d2", [MV_NP + 0]
        REPORT "movs.d3", [MV_NP + 4]
        REPORT "movs.d4", [MV_NP + 8]
        ret

; fix_hook: a #PF on PG_FIX maps it and retries the instruction.
fix_hook:
        cmp dword [last_vec], 14
        jne .no
        mov eax, [last_cr2]
        and eax, ~0xfff
        cmp eax, PG_FIX
        jne .no
        or dword [PTE(PG_FIX)], 1
        invlpg [PG_FIX]
        inc dword [fix_count]
        mov eax, 1
        ret
.no:    xor eax, eax
        ret

; movs_hook: a #PF on MV_NP records the string registers, maps the page, retries.
movs_hook:
        cmp dword [last_vec], 14
        jne .no
        mov eax, [last_cr2]
        and eax, ~0xfff
        cmp eax, MV_NP
        jne .no
        mov eax, [ebx + R_ECX]
        mov [movs_ecx], eax
        mov eax, [ebx + R_ESI]
        mov [movs_esi], eax
        mov eax, [ebx + R_EDI]
        mov [movs_edi], eax
        or dword [PTE(MV_NP)], 1
        invlpg [MV_NP]
        mov eax, 1
        ret
.no:    xor eax, eax
        ret

        align 4
fix_count:      dd 0
movs_ecx:       dd 0
movs_esi:       dd 0
movs_edi:       dd 0
