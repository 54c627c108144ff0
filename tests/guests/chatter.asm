; output: elf
;
; chatter: an lguest guest that prints more than the launcher keeps. It writes
; "line N" for N = 0 .. 2999 on the early console (about 27 KB, far more than
; the small console log tests/console_log_test.ts gives the launcher) and
; powers off. The test asserts the launcher held only the last bytes, counted
; all of them, and that the tail it held is the tail the guest printed.

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

LINES equ 3000

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        xor ebx, ebx
.line:  mov esi, prefix
        call early_puts
        mov eax, ebx
        call early_putdec
        mov al, 10
        call early_putc
        inc ebx
        cmp ebx, LINES
        jb .line
        mov esi, msg_power_down
        call poweroff

prefix: db "line ", 0

        LGUEST_DATA 0
        align 16
        times 4096 db 0
stack_top:

ELF_END
