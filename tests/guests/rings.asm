; rings: privilege transitions — IRET and RETF outward, INT n inward through
; the TSS stacks, the gate-DPL check, the data-segment nulling on a return to
; an outer ring, interrupt versus trap gates, and far JMP/CALL/RETF.
;
; Paging stays off: only segmentation and the IDT/TSS are exercised here.
; Each block prints what it saw; tests/x86_system_test.ts asserts the values.

%include "tests/guests/include/guest.inc"

main:
; ---- 1. ring 0 -> 3 by IRET, back by INT 0x30 (DPL-3 interrupt gate) --------
; SDM Vol. 3A 6.12.1: an interrupt to a more privileged level takes SS:ESP from
; the TSS (SS0:ESP0) and pushes the old SS, ESP, EFLAGS, CS, EIP there.
; SDM IRET (return to outer privilege): every one of ES, FS, GS, DS that holds
; a data or non-conforming code segment with DPL < the new CPL is nulled.
        mov ax, SEL_DATA3           ; ES: DPL 3, stays
        mov es, ax
        mov ax, SEL_CODE_CONF0      ; FS: conforming code, stays whatever its DPL
        mov fs, ax
        mov ax, SEL_DATA1           ; GS: DPL 1 < 3, nulled
        mov gs, ax                  ; DS: SEL_DATA0, DPL 0 < 3, nulled
        TRY .back1
        push dword SEL_DATA3
        push dword USTACK_TOP - 16
        push dword 0x00000002
        push dword SEL_CODE3
        push dword .user1
        iretd
.user1: mov eax, ds                 ; selectors as ring 3 sees them (before any memory access)
        mov ebx, es
        mov ecx, fs
        mov edx, gs
        mov esi, ss
        mov edi, cs
        mov ebp, esp
.int1:  int VEC_RET
.back1: DISARM
        REPORT "iret3.ds", [uret_regs + R_EAX]
        REPORT "iret3.es", [uret_regs + R_EBX]
        REPORT "iret3.fs", [uret_regs + R_ECX]
        REPORT "iret3.gs", [uret_regs + R_EDX]
        REPORT "iret3.ss", [uret_regs + R_ESI]
        REPORT "iret3.cs", [uret_regs + R_EDI]
        REPORT "iret3.esp", [uret_regs + R_EBP]
        REPORT "int3.frame", [uret_frame]       ; where EIP was pushed: ESP0 - 20
        REPORT "int3.eip", [uret_eip]
        REPORT "int3.next", .int1 + 2           ; INT n pushes the next instruction's EIP
        REPORT "int3.cs", [uret_cs]
        REPORT "int3.eflags", [uret_efl]
        REPORT "int3.esp", [uret_esp]
        REPORT "int3.ss", [uret_ss]
        REPORT "int3.handler_ss", [uret_hss]    ; SS0 from the TSS

; ---- 2. ring 0 -> 1 -> 3 -> 1 -> 3 -> 0: an lguest guest kernel's case --------
; The kernel runs in ring 1; its system-call gate (DPL 3) targets a ring-1 code
; segment, so INT from ring 3 switches to SS1:ESP1 from the TSS.
        GATE 0x31, r1_syscall, SEL_CODE1, 0xee00
        mov ax, SEL_DATA3           ; FS: DPL 3 >= 1, stays on IRET to ring 1
        mov fs, ax
        mov ax, SEL_DATA1           ; GS: DPL 1 = new CPL, stays
        mov gs, ax
        TRY .back2
        push dword SEL_DATA1
        push dword K1STACK_TOP
        push dword 0x00000002
        push dword SEL_CODE1
        push dword .kern1
        iretd
.kern1: mov eax, ds                 ; ring 1: DS (DPL 0) nulled, FS and GS kept
        mov [ss:r1_ds], eax
        mov eax, fs
        mov [ss:r1_fs], eax
        mov eax, gs
        mov [ss:r1_gs], eax
        mov eax, cs
        mov [ss:r1_cs], eax
        mov ax, SEL_DATA1
        mov ds, ax
        mov es, ax
        push dword SEL_DATA3        ; IRET from ring 1 to ring 3
        push dword USTACK_TOP - 32
        push dword 0x00000002
        push dword SEL_CODE3
        push dword .user2
        iretd
.user2: mov eax, 0x1234abcd         ; a register value the ring-1 handler must see
.sys2:  int 0x31
.ret2:  int VEC_RET
.back2: DISARM
        REPORT "r1.ds", [r1_ds]
        REPORT "r1.fs", [r1_fs]
        REPORT "r1.gs", [r1_gs]
        REPORT "r1.cs", [r1_cs]
        REPORT "r1sys.esp", [r1h_esp]           ; ESP1 - 20
        REPORT "r1sys.ss", [r1h_ss]             ; SS1
        REPORT "r1sys.cs", [r1h_cs]
        REPORT "r1sys.eax", [r1h_eax]
        REPORT "r1sys.eip", [r1h_frame + 0]
        REPORT "r1sys.next", .sys2 + 2
        REPORT "r1sys.fcs", [r1h_frame + 4]
        REPORT "r1sys.feflags", [r1h_frame + 8]
        REPORT "r1sys.fesp", [r1h_frame + 12]
        REPORT "r1sys.fss", [r1h_frame + 16]
        REPORT "r1ret.eip", [uret_eip]          ; back in ring 3 after the ring-1 IRET
        REPORT "r1ret.next", .ret2 + 2
        REPORT "r1ret.cs", [uret_cs]

; ---- 3. ring 1 -> 0 by INT: the frame records ring 1's SS:ESP ---------------
        BEGIN1 "r1int"
        mov eax, esp
.r1i:   int VEC_RET
        END .r1i
        REPORT "r1int.frame", [uret_frame]
        REPORT "r1int.cs", [uret_cs]
        REPORT "r1int.ss", [uret_ss]
        REPORT "r1int.esp", [uret_esp]

; ---- 4. INT n through a gate with DPL < CPL: #GP(n*8 + 2) -------------------
; SDM INT n: "IF software interrupt AND gate DPL < CPL THEN #GP(vector*8 + 2)".
        GATE 0x33, ring_return, SEL_CODE0, 0x8e00      ; DPL 0
        GATE 0x41, ring_return, SEL_CODE0, 0x6e00      ; DPL 3, not present
        ATTEMPT3 "int_dpl3", int 0x33
        ATTEMPT1 "int_dpl1", int 0x33
        ATTEMPT3 "int3_dpl", int3                      ; vector 3's gate is DPL 0
        ATTEMPT3 "int_np", int 0x41                    ; #NP(0x41*8 + 2)
        ATTEMPT "int_r0", int 0x33                     ; CPL 0: allowed (vec stays NONE)

; ---- 5. interrupt gate clears IF, trap gate keeps it --------------------------
        GATE 0x34, if_probe, SEL_CODE0, 0x8e00         ; interrupt gate
        GATE 0x35, if_probe, SEL_CODE0, 0x8f00         ; trap gate
        sti                                             ; (the PICs are masked)
        int 0x34
        mov eax, [probe_if]
        mov ebx, [probe_pushed]
        int 0x35
        mov ecx, [probe_if]
        mov edx, [probe_pushed]
        pushfd
        pop esi
        cli
        REPORT "intgate.handler_if", eax
        REPORT "intgate.pushed_if", ebx
        REPORT "trapgate.handler_if", ecx
        REPORT "trapgate.pushed_if", edx
        and esi, EFL_IF
        REPORT "gate.if_after_iret", esi

; ---- 6. far JMP / CALL / RETF at the same privilege ---------------------------
        mov dword [ss:far_target], .fj1
        mov word [ss:far_target + 4], SEL_CODE0
        jmp far [far_target]
        REPORT "fjmp.reached", 0                        ; skipped if the jump works
.fj1:   mov eax, cs
        REPORT "fjmp.cs", eax
        mov ebp, esp
        call SEL_CODE0:far_fn
.fc1:   sub ebp, esp
        REPORT "fcall.esp_delta", ebp                   ; 0: RETF popped both
        REPORT "fcall.pushed_eip", [far_eip]
        REPORT "fcall.next", .fc1
        REPORT "fcall.pushed_cs", [far_cs]
        ; conforming code: callable from ring 0 and ring 3, CPL unchanged, CS.RPL = CPL
        call SEL_CODE_CONF0:conf_fn
        REPORT "conf0.cs", [conf_cs]
        BEGIN3 "conf3"
.cf3:   call SEL_CODE_CONF0:conf_fn
        END .cf3
        REPORT "conf3.cs", [conf_cs]                     ; 0x5b: RPL = CPL 3
        REPORT "conf3.pushed_cs", [conf_pushed_cs]
        REPORT "conf3.ret_cs", [uret_cs]                 ; still ring 3 after RETF
        ; faults (SDM JMP/CALL far: the code-segment checks)
        ATTEMPT "fjmp_conf3", jmp SEL_CODE_CONF0 + 8:0  ; conforming DPL 3 > CPL 0
        ATTEMPT "fjmp_code3", jmp SEL_CODE3:0           ; non-conforming, DPL != CPL
        ATTEMPT "fjmp_code1", jmp SEL_CODE1:0
        ATTEMPT "fjmp_rpl3", jmp SEL_CODE0 | 3:0        ; RPL > CPL
        ATTEMPT "fcall_np", call SEL_CODE_NP0:0         ; not present: #NP(sel)
        ATTEMPT "fjmp_data", jmp SEL_DATA0:0            ; not code: #GP(sel)
        ATTEMPT "fjmp_null", jmp 0:0                    ; null: #GP(0)
        ATTEMPT "fjmp_beyond", jmp SEL_BEYOND:0         ; outside the GDT: #GP(sel)

; ---- 7. RETF to an outer privilege level, with RETF imm16 ---------------------
; SDM RET (far, outer privilege): pop EIP, CS, skip imm16 bytes, pop ESP, SS
; (ESP then also skips imm16), null DS/ES/FS/GS as for IRET.
        TRY .back7
        push dword SEL_DATA3
        push dword USTACK_TOP - 64
        push dword 0xaaaaaaaa                            ; two parameters: RETF 8 skips them
        push dword 0xbbbbbbbb
        push dword SEL_CODE3
        push dword .user7
        retf 8
.user7: mov eax, esp
        mov ebx, ds
        mov ecx, cs
        mov edx, ss
        int VEC_RET
.back7: DISARM
        REPORT "retf3.esp", [uret_regs + R_EAX]          ; USTACK_TOP - 64 + 8
        REPORT "retf3.ds", [uret_regs + R_EBX]
        REPORT "retf3.cs", [uret_regs + R_ECX]
        REPORT "retf3.ss", [uret_regs + R_EDX]
        ; RETF to an inner level is refused: #GP(selector)
        mov dword [USTACK_TOP - 8], 0
        mov dword [USTACK_TOP - 4], SEL_CODE0
        mov dword [user_esp], USTACK_TOP - 8
        ATTEMPT3 "retf_inner", retf
        mov dword [user_esp], USTACK_TOP
        ; IRET to an outer level with an SS of the wrong privilege: #GP(SS selector)
        BEGIN0 "iret_bad_ss"
        push dword SEL_DATA1                             ; SS DPL 1 for a ring-3 CS
        push dword USTACK_TOP
        push dword 0x00000002
        push dword SEL_CODE3
        push dword 0
.ib:    iretd
        END .ib
        ret

; ---------------------------------------------------------------- handlers

; The ring-1 kernel's system-call handler (CPL 1, on the SS1:ESP1 stack).
r1_syscall:
        mov [ss:r1h_esp], esp
        mov [ss:r1h_eax], eax
        push eax
        mov eax, ss
        mov [ss:r1h_ss], eax
        mov eax, cs
        mov [ss:r1h_cs], eax
        mov eax, [esp + 4]
        mov [ss:r1h_frame + 0], eax
        mov eax, [esp + 8]
        mov [ss:r1h_frame + 4], eax
        mov eax, [esp + 12]
        mov [ss:r1h_frame + 8], eax
        mov eax, [esp + 16]
        mov [ss:r1h_frame + 12], eax
        mov eax, [esp + 20]
        mov [ss:r1h_frame + 16], eax
        pop eax
        iretd                       ; ring 1 -> ring 3

; if_probe: record IF inside the handler and IF in the pushed EFLAGS.
if_probe:
        push eax
        pushfd
        pop eax
        and eax, EFL_IF
        mov [ss:probe_if], eax
        mov eax, [esp + 12]
        and eax, EFL_IF
        mov [ss:probe_pushed], eax
        pop eax
        iretd

; far_fn: record the far return address.
far_fn:
        mov eax, [esp]
        mov [ss:far_eip], eax
        mov eax, [esp + 4]
        and eax, 0xffff
        mov [ss:far_cs], eax
        retf

; conf_fn: runs in the conforming segment; record CS and the caller's CS.
conf_fn:
        mov eax, cs
        mov [ss:conf_cs], eax
        mov eax, [esp + 4]
        and eax, 0xffff
        mov [ss:conf_pushed_cs], eax
        retf

        align 4
r1_ds:          dd 0
r1_fs:          dd 0
r1_gs:          dd 0
r1_cs:          dd 0
r1h_esp:        dd 0
r1h_ss:         dd 0
r1h_cs:         dd 0
r1h_eax:        dd 0
r1h_frame:      times 5 dd 0
probe_if:       dd 0
probe_pushed:   dd 0
far_target:     dd 0, 0
far_eip:        dd 0
far_cs:         dd 0
conf_cs:        dd 0
conf_pushed_cs: dd 0
