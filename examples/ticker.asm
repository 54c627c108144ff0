; output: elf
;
; ticker: a bare-machine program that never ends. It counts forever and prints
; "tick N" on COM1 every 2^21 turns of its loop — for trying what a guest that
; keeps running is like in the REPL: Ctrl-C during `continue`, `continue &`
; with output arriving above the prompt, and watchpoints (`watch ticks` stops
; at each tick; `rwatch` on the counter at every turn).
;
;   deno run -A repl.ts --bare 16 examples/ticker.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN


_start:
        mov esp, stack_top
        mov esi, greeting
        call puts
.loop:  inc dword [counter]
        test dword [counter], 0x1fffff
        jnz .loop
        inc dword [ticks]
        mov esi, tick_msg
        call puts
        mov eax, [ticks]
        call putdec
        mov al, 10
        call putc
        jmp .loop

%include "serial.inc"

greeting: db "ticker: counting forever", 10, 0
tick_msg: db "tick ", 0

        align 4
counter: dd 0
ticks:   dd 0

        align 16
        times 1024 db 0
stack_top:

ELF_END
