; singlestep: EFLAGS.TF makes the CPU raise #DB (a trap) after each
; instruction, with the saved EIP that of the next instruction.
;
; SDM Vol. 3A 17.3.1.4: the single-step trap is raised after an instruction
; that begins with TF set; "the processor does not generate this exception
; after an instruction that sets the TF flag" (so the first #DB follows the
; instruction after the POPF that sets TF), while a POPF that clears TF, having
; begun with TF set, is still followed by one. The #DB handler runs with TF
; clear (delivery clears it) and its IRET restores TF from the frame. DR6.BS
; (bit 14) reports a single-step #DB (17.2.3).
;
; Delivering an interrupt or exception clears TF and discards the pending
; single-step trap: INT n under TF is not followed by a #DB at the handler, and
; the handler's IRET, which sets TF again, is not followed by one either.
;
; Part A stops stepping the way a debugger does, by clearing TF in the saved
; EFLAGS. Each part prints its results before the next begins. A dword at
; PART_SELECT, when not 0, runs only that part (1 = A, 2 = B, 3 = C), so a test
; can look at one part even if another stops the machine.

%include "tests/guests/include/guest.inc"

PART_SELECT     equ SCRATCH + 0xfffc

main:
        mov eax, [PART_SELECT]
        cmp eax, 2
        je part_b
        cmp eax, 3
        je part_c
; ---- A: step four instructions; the handler clears TF when EIP reaches a5 -------
        mov dword [exc_hook], db_hook
        mov dword [db_stop], a5
        TRY ss_fail                     ; anything but #DB would land here
        pushfd
        or dword [esp], EFL_TF
        popfd                           ; sets TF: no #DB after this one
a1:     nop
a2:     inc eax
a3:     mov ebx, 1
a4:     add ecx, ebx
a5:     nop                             ; TF is clear from here on
a6:     DISARM
        mov dword [exc_hook], 0
        REPORT "a.count", [db_count]
        call report_eips
        REPORT "a.next1", a2
        REPORT "a.next2", a3
        REPORT "a.next3", a4
        REPORT "a.next4", a5
        REPORT "a.handler_tf", [db_tf]
        REPORT "a.dr6_bs", [db_dr6]

        cmp dword [PART_SELECT], 1
        je ss_done

; ---- C: INT n under TF: no #DB until the instruction after the INT has run -------
part_c:
        GATE 0x33, c_handler, SEL_CODE0, 0x8e00
        mov dword [db_count], 0
        mov dword [db_tf], 0
        mov dword [db_stop], c3
        mov dword [exc_hook], db_hook
        TRY ss_fail
        pushfd
        or dword [esp], EFL_TF
        popfd
c1:     int 0x33                        ; TF cleared on the way to the handler
c2:     nop                             ; TF back (IRET); this one is stepped
c3:     nop                             ; the hook cleared TF: not stepped
c4:     DISARM
        mov dword [exc_hook], 0
        REPORT "c.count", [db_count]
        REPORT "c.first", [db_eips]
        REPORT "c.after_nop", c3
        REPORT "c.handler_tf", [c_tf]
        cmp dword [PART_SELECT], 3
        je ss_done

; ---- B: POPF clearing TF is itself followed by a #DB -------------------------------
part_b:
        mov dword [db_count], 0
        mov dword [db_stop], 0
        mov dword [exc_hook], db_hook
        TRY ss_fail
        pushfd
        or dword [esp], EFL_TF
        popfd
b1:     pushfd
b2:     and dword [esp], ~EFL_TF
b3:     popfd                           ; begins with TF set, clears it: #DB after it
b4:     nop                             ; no #DB after this one
b5:     DISARM
        mov dword [exc_hook], 0
        REPORT "b.count", [db_count]
        REPORT "b.last", [db_eips + 8]
        REPORT "b.after_popf", b4
ss_done:
        ret

; c_handler: the INT 0x33 handler; records whether TF is set inside.
c_handler:
        push eax
        pushfd
        pop eax
        and eax, EFL_TF
        mov [c_tf], eax
        pop eax
        iretd

ss_fail:
        DISARM
        REPORT "db.other_exception", [last_vec]
        ret

; report_eips: print the recorded #DB EIPs as db.0, db.1, ...
report_eips:
        xor ecx, ecx
.next:  cmp ecx, [db_count]
        jae .done
        mov eax, [db_eips + ecx*4]
        mov [slot_name + 3], cl
        add byte [slot_name + 3], '0'
        mov esi, slot_name
        xor edi, edi
        call report
        inc ecx
        cmp ecx, 8
        jb .next
.done:  ret

; db_hook: for #DB, record the saved EIP, TF inside the handler and DR6.BS;
; clear TF in the frame when the saved EIP is [db_stop]; IRET back (EAX = 1).
db_hook:
        cmp dword [last_vec], 1
        jne .no
        mov ecx, [db_count]
        cmp ecx, 8
        jae .full
        mov eax, [last_eip]
        mov [db_eips + ecx*4], eax
        inc dword [db_count]
.full:  pushfd
        pop eax
        and eax, EFL_TF
        or [db_tf], eax
        mov eax, dr6
        and eax, 0x4000
        or [db_dr6], eax
        xor eax, eax
        mov dr6, eax
        mov eax, [last_eip]
        cmp eax, [db_stop]
        jne .ret
        and dword [ebx + 56], ~EFL_TF   ; the saved EFLAGS (exc_common's frame layout)
.ret:   mov eax, 1
        ret
.no:    xor eax, eax
        ret

        align 4
db_count:       dd 0
db_stop:        dd 0
db_eips:        times 8 dd 0
db_tf:          dd 0
db_dr6:         dd 0
c_tf:           dd 0
slot_name:      db "db.0", 0
