; doublefault: which faults during exception delivery become a double fault.
;
; SDM Vol. 3A 6.15, Table 6-5 ("Conditions for Generating a Double Fault"):
; a contributory exception (#DE, #TS, #NP, #SS, #GP) raised while delivering a
; contributory one, or a #PF or contributory exception while delivering a #PF,
; becomes #DF (error code 0). Any other pair is handled serially: the second
; exception is delivered as itself. (Table 6-4: #UD is benign.)
;
; To fault while reading a gate (not while pushing the frame, which shares the
; stack with the #DF handler), the IDT is moved so that a page boundary falls
; between gate 13 (#GP) and gate 14 (#PF); unmapping one page or the other
; makes the gate read itself page-fault.
;
; The EIP in a #DF frame is undefined by the SDM; lguest.ts (like QEMU) pushes
; that of the instruction that raised the first fault.

%include "tests/guests/include/guest.inc"

IDT2            equ 0x412000 - 14 * 8   ; gates 0-13 in page 0x411000, 14-255 in 0x412000
%define PTE(l) (PT_ADDR + 0x1000 + (((l) - 0x400000) >> 10))

main:
        call map_identity
        mov eax, PD_ADDR
        mov cr3, eax
        mov eax, cr0
        or eax, CR0_PG
        mov cr0, eax
        mov word [SCRATCH], SEL_BEYOND          ; a selector whose load raises #GP(0xb8)

; ---- #GP, and gate 13 not present: #NP while delivering #GP -> #DF -------------
        GATE 13, exc_stub13, SEL_CODE0, 0x0e00
        ATTEMPT "gp_np_gate", mov ds, [SCRATCH]
        GATE 13, exc_stub13, SEL_CODE0, 0x8e00

; ---- #GP, and gate 13 names a data segment: #GP while delivering #GP -> #DF -------
        GATE 13, exc_stub13, SEL_DATA0, 0x8e00
        ATTEMPT "gp_bad_gate", mov ds, [SCRATCH]
        GATE 13, exc_stub13, SEL_CODE0, 0x8e00

; ---- #PF, and gate 14 not present: #NP while delivering #PF -> #DF ---------------
        GATE 14, exc_stub14, SEL_CODE0, 0x0e00
        ATTEMPT "pf_np_gate", mov eax, [0x800000]
        GATE 14, exc_stub14, SEL_CODE0, 0x8e00

; ---- #UD (benign), and gate 6 not present: the #NP is delivered as itself --------
        GATE 6, exc_stub6, SEL_CODE0, 0x0e00
        ATTEMPT "ud_np_gate", ud2
        GATE 6, exc_stub6, SEL_CODE0, 0x8e00

; ---- #DE (contributory), and gate 0 not present -> #DF ----------------------------
        GATE 0, exc_stub0, SEL_CODE0, 0x0e00
        xor ecx, ecx
        ATTEMPT "de_np_gate", div ecx
        GATE 0, exc_stub0, SEL_CODE0, 0x8e00

; ---- INT n is not an exception: a fault while delivering it is delivered serially --
        GATE 0x40, ring_return, SEL_CODE0, 0x0e00
        ATTEMPT "int_np_gate", int 0x40

; ---- the IDT across a page boundary -------------------------------------------------------
        mov esi, idt
        mov edi, IDT2
        mov ecx, 256 * 2
        rep movsd
        mov dword [idt_ptr + 2], IDT2
        lidt [idt_ptr]
        ; #GP whose gate read page-faults: contributory then #PF -> handled serially,
        ; the #PF is delivered (CR2 = the gate's address, error 0: supervisor read).
        and dword [PTE(0x411000)], ~1
        invlpg [0x411000]
        ATTEMPT "gp_gate_pf", mov ds, [SCRATCH]
        or dword [PTE(0x411000)], 1
        invlpg [0x411000]
        ; #PF whose gate read page-faults: #PF then #PF -> #DF (CR2 = the gate's address)
        and dword [PTE(0x412000)], ~1
        invlpg [0x412000]
        ATTEMPT "pf_gate_pf", mov eax, [0x800000]
        or dword [PTE(0x412000)], 1
        invlpg [0x412000]
        ret
