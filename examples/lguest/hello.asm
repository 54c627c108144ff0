; output: elf
;
; hello: the smallest lguest guest. It starts at ring 1 in the host's linear
; mode (virtual == physical, no page tables of its own), tells the host where
; its lguest_data is (LHCALL_LGUEST_INIT), prints a line on the early console
; (PCI config writes that the host hands to the launcher), and powers off
; (LHCALL_SHUTDOWN).
;
;   deno run -A repl.ts --run 16 examples/lguest/hello.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        mov esi, greeting
        call early_puts
        mov esi, bye
        call poweroff

greeting: db "Hello from an lguest guest on lguest.ts!", 10, 0
bye:      db "Power down", 0

        LGUEST_DATA 0
        align 16
        times 4096 db 0
stack_top:

ELF_END
