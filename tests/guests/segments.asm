; segments: every way a segment-register load can fault, with its error code;
; what a null DS does; the accessed bit; the segment base; and what LAR, LSL,
; VERR and VERW answer for each kind of descriptor at ring 0 and ring 3.
;
; The rules are the SDM's MOV/POP Sreg and LAR/LSL/VERR/VERW pseudocode
; (Vol. 2) and Vol. 3A 5.5-5.10 (privilege checks for data and stack segments).
; Paging stays off.

%include "tests/guests/include/guest.inc"

main:
; ---- loading SS (SDM MOV: "IF SS is loaded ...") ----------------------------
        xor eax, eax
        ATTEMPT "ss_null", mov ss, ax               ; null SS: #GP(0)
        mov ax, SEL_DATA0 | 3
        ATTEMPT "ss_rpl", mov ss, ax                ; RPL != CPL: #GP(sel)
        mov ax, SEL_DATA1 & ~3
        ATTEMPT "ss_dpl", mov ss, ax                ; DPL != CPL: #GP(sel)
        mov ax, SEL_DATA_RO0
        ATTEMPT "ss_readonly", mov ss, ax           ; not a writable data segment: #GP(sel)
        mov ax, SEL_CODE0
        ATTEMPT "ss_code", mov ss, ax               ; code segment: #GP(sel)
        mov ax, SEL_DATA_NP0
        ATTEMPT "ss_notpresent", mov ss, ax         ; not present: #SS(sel)
        mov ax, SEL_DATA0
        ATTEMPT "ss_ok", mov ss, ax                 ; the valid case: no fault

; ---- loading DS/ES/FS/GS ----------------------------------------------------
        mov ax, SEL_BEYOND | 3
        ATTEMPT "ds_beyond_gdt", mov ds, ax         ; index past the GDT limit: #GP(sel & ~3)
        mov ax, 0x0c
        ATTEMPT "ds_ldt_none", mov ds, ax           ; TI=1 with a null LDTR: #GP(sel)
        mov ax, SEL_DATA_NP0
        ATTEMPT "ds_notpresent", mov ds, ax         ; not present: #NP(sel)
        ATTEMPT "fs_notpresent", mov fs, ax
        mov ax, SEL_CODE_XO0
        ATTEMPT "ds_execonly", mov ds, ax           ; execute-only code: #GP(sel)
        mov ax, SEL_TSS
        ATTEMPT "ds_system", mov ds, ax             ; system descriptor: #GP(sel)
        mov ax, SEL_DATA0 | 3
        ATTEMPT "ds_rpl_gt_dpl", mov ds, ax         ; RPL 3 > DPL 0: #GP(sel)
        mov ax, SEL_CODE0
        ATTEMPT "ds_readable_code", mov ds, ax      ; readable code: allowed
        mov ax, SEL_DATA3
        ATTEMPT "ds_data3", mov es, ax              ; DPL 3 data at CPL 0: allowed
        ; the far-pointer loads use the same checks
        mov word [SCRATCH + 4], SEL_DATA_NP0
        ATTEMPT "lgs_notpresent", lgs eax, [SCRATCH]
        mov word [SCRATCH + 4], 0
        ATTEMPT "lss_null", lss eax, [SCRATCH]
        ; POP DS faults before ESP moves
        push dword SEL_DATA_NP0
        mov ebp, esp
        ATTEMPT "pop_ds_np", pop ds
        mov eax, [last_frame]           ; the frame sits just below ESP at the fault:
        add eax, 12                     ; EIP slot + EIP, CS, EFLAGS
        sub eax, ebp
        REPORT "pop_ds_np.esp_moved", eax
        add esp, 4

; ---- at ring 3 ----------------------------------------------------------------
        mov ax, SEL_DATA0 | 3
        ATTEMPT3 "r3_ds_dpl0", mov ds, ax           ; DPL 0 < CPL 3: #GP(sel)
        mov ax, SEL_DATA0
        ATTEMPT3 "r3_ds_rpl0", mov ds, ax           ; RPL 0 does not help: #GP(sel)
        mov ax, SEL_DATA1 | 3
        ATTEMPT3 "r3_ds_dpl1", mov ds, ax
        mov ax, SEL_CODE_CONF0 | 3
        ATTEMPT3 "r3_ds_conforming", mov ds, ax     ; conforming readable code: no privilege check
        mov ax, SEL_CODE0 | 3
        ATTEMPT3 "r3_ds_code0", mov ds, ax          ; non-conforming code, DPL 0: #GP(sel)
        mov ax, SEL_DATA0 | 3
        ATTEMPT3 "r3_ss_dpl0", mov ss, ax           ; stack DPL != CPL: #GP(sel)
        mov ax, SEL_DATA3
        ATTEMPT3 "r3_ss_ok", mov ss, ax

; ---- a null selector in DS ------------------------------------------------------
; Loading null into DS/ES/FS/GS never faults (SDM MOV). Using it does: a memory
; access through a null segment is #GP(0) (SDM Vol. 3A 5.4.1). lguest.ts does
; not check segments on ordinary memory accesses (README "Not modelled"), so
; there the access goes through with base 0. (QEMU's TCG does not check either,
; so the two agree on ds_null_use; real hardware raises #GP(0).)
        xor eax, eax
        ATTEMPT "ds_null_load", mov ds, ax
        mov dword [SCRATCH + 8], 0x5a5a5a5a
        xor eax, eax
        BEGIN0 "ds_null_use"
        xor ebx, ebx
        mov ds, bx
.nu:    mov eax, [SCRATCH + 8]
        END .nu
        REPORT "ds_null_use.eax", eax

; ---- the accessed bit (SDM Vol. 3A 3.4.5.1: set when the descriptor is loaded) --
        REPORT "acc.before", [gdt + SEL_DATA_ACC + 4]
        mov ax, SEL_DATA_ACC
        mov es, ax
        push dword SEL_DATA0
        pop es
        REPORT "acc.after", [gdt + SEL_DATA_ACC + 4]
        REPORT "acc.np_after_fault", [gdt + SEL_DATA_NP0 + 4]   ; a faulting load sets nothing
        REPORT "acc.conf_before", [gdt + SEL_CODE_CONF3 + 4]
        BEGIN3 "acc_cs"
.ac:    jmp SEL_CODE_CONF3 | 3:.ac3                             ; far JMP to conforming DPL 3
.ac3:   mov eax, cs
        END .ac
        REPORT "acc_cs.cs", [uret_regs + R_EAX]
        REPORT "acc.conf_after", [gdt + SEL_CODE_CONF3 + 4]

; ---- the segment base -------------------------------------------------------------
        mov ax, SEL_DATA_SMALL
        mov es, ax
        mov dword [es:0x10], 0xcafe0001
        push dword SEL_DATA0
        pop es
        REPORT "base.flat_read", [SCRATCH + 0x10]

; ---- LAR / LSL / VERR / VERW ---------------------------------------------------------
; probe: EAX = LAR result, EDX = LSL result (both preset to 0xdeadbeef, which
; stays when ZF=0: the destination is not written), ECX = ZF of LAR | LSL<<1 |
; VERR<<2 | VERW<<3.
%macro PROBE0 2
        mov ebx, %2
        call probe
        REPORT %1, ".lar", eax
        REPORT %1, ".lsl", edx
        REPORT %1, ".zf", ecx
%endmacro
        PROBE0 "p0_data0", SEL_DATA0
        PROBE0 "p0_data0_rpl3", SEL_DATA0 | 3
        PROBE0 "p0_code0", SEL_CODE0
        PROBE0 "p0_execonly", SEL_CODE_XO0
        PROBE0 "p0_readonly", SEL_DATA_RO0
        PROBE0 "p0_small", SEL_DATA_SMALL
        PROBE0 "p0_notpresent", SEL_DATA_NP0
        PROBE0 "p0_tss", SEL_TSS
        PROBE0 "p0_callgate", SEL_CALLGATE
        PROBE0 "p0_intgate", SEL_INTGATE
        PROBE0 "p0_ldt", SEL_LDTDESC
        PROBE0 "p0_null", 0
        PROBE0 "p0_beyond", SEL_BEYOND

%macro PROBE3 2
        BEGIN3 %1
        mov ebx, %2
        call probe
        END 0
        REPORT %1, ".lar", [uret_regs + R_EAX]
        REPORT %1, ".lsl", [uret_regs + R_EDX]
        REPORT %1, ".zf", [uret_regs + R_ECX]
%endmacro
        PROBE3 "p3_data0", SEL_DATA0 | 3
        PROBE3 "p3_data3", SEL_DATA3
        PROBE3 "p3_code3", SEL_CODE3
        PROBE3 "p3_conf0", SEL_CODE_CONF0 | 3
        PROBE3 "p3_code0", SEL_CODE0 | 3
        PROBE3 "p3_callgate", SEL_CALLGATE | 3
        ret

probe:
        xor ecx, ecx
        mov eax, 0xdeadbeef
        lar eax, bx
        jnz .1
        or ecx, 1
.1:     mov edx, 0xdeadbeef
        lsl edx, bx
        jnz .2
        or ecx, 2
.2:     verr bx
        jnz .3
        or ecx, 4
.3:     verw bx
        jnz .4
        or ecx, 8
.4:     ret
