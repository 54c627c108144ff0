; irq: external interrupts on lguest.ts — delivered only with IF=1, never in
; the shadow of STI, at the next instruction boundary otherwise, and waking a
; HLT. The embedder plays the interrupt controller: a byte written to port
; 0x510 (tests/system_harness.ts) is raised with `cpu.raiseIrq(vector)`, and at
; the HLT the test itself raises the interrupt and resumes the CPU. This guest
; needs that port, so it runs on lguest.ts only.
;
; SDM Vol. 3A 6.8.1 (masking maskable interrupts with IF), 6.8.3 (STI: "the
; processor inhibits interrupts until after the next instruction"), HLT (Vol.
; 2A: "an enabled interrupt ... resumes execution" after the HLT).

%include "tests/guests/include/guest.inc"

main:
        GATE 0x40, irq40, SEL_CODE0, 0x8e00
        GATE 0x41, irq41, SEL_CODE0, 0x8e00
        GATE 0x42, irq42, SEL_CODE0, 0x8e00
        mov dx, PORT_IRQ

; ---- 1. raised with IF=0: stays pending -----------------------------------------
        mov al, 0x40
        out dx, al
        nop
        nop
        REPORT "masked.count", [irq_count]          ; 0

; ---- 2. STI: the next instruction runs first, then the pending interrupt --------
        xor ecx, ecx
        sti
i1:     inc ecx                                     ; in the STI shadow
i2:     inc ecx                                     ; interrupted before this one
        cli
        REPORT "shadow.count", [irq_count]          ; 1
        REPORT "shadow.vector", [irq_vector]        ; 0x40
        REPORT "shadow.eip", [irq_eip]              ; i2
        REPORT "shadow.i2", i2
        REPORT "shadow.ecx", [irq_ecx]              ; 1: one INC ran before it
        REPORT "shadow.handler_if", [irq_if]        ; interrupt gate: 0
        REPORT "shadow.pushed_if", [irq_pushed_if]  ; EFL_IF

; ---- 3. raised with IF=1: taken at the next instruction boundary -------------------
        sti
        nop                                         ; (ends the STI shadow)
        mov al, 0x41
j0:     out dx, al
j1:     nop
        cli
        REPORT "now.count", [irq_count]             ; 2
        REPORT "now.vector", [irq_vector]           ; 0x41
        REPORT "now.eip", [irq_eip]                 ; j1
        REPORT "now.j1", j1

; ---- 4. HLT with IF=1: the embedder sees Exit.Halt, raises 0x42, resumes ------------
        REPORT "halt.next", h1
        sti
        hlt
h1:     cli
        REPORT "halt.count", [irq_count]            ; 3
        REPORT "halt.vector", [irq_vector]          ; 0x42
        REPORT "halt.eip", [irq_eip]                ; h1: the instruction after HLT
        ret

irq40:  push dword 0x40
        jmp irq_common
irq41:  push dword 0x41
        jmp irq_common
irq42:  push dword 0x42
        jmp irq_common

; irq_common: record vector, interrupted EIP, ECX, IF inside and in the frame.
irq_common:
        push eax
        mov eax, [esp + 4]
        mov [irq_vector], eax
        mov eax, [esp + 8]
        mov [irq_eip], eax
        mov eax, [esp + 16]
        and eax, EFL_IF
        mov [irq_pushed_if], eax
        pushfd
        pop eax
        and eax, EFL_IF
        mov [irq_if], eax
        mov [irq_ecx], ecx
        inc dword [irq_count]
        pop eax
        add esp, 4
        iretd

        align 4
irq_count:      dd 0
irq_vector:     dd 0
irq_eip:        dd 0
irq_ecx:        dd 0
irq_if:         dd 0
irq_pushed_if:  dd 0
