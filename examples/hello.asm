; output: elf
;
; hello: the first program to run on lguest.ts's bare machine.
;
; Loaded at 1 MiB and entered at ring 0 with flat segments, it prints a greeting
; on COM1, counts the primes below 20000 by trial division (a loop of DIV, CMP
; and conditional jumps: the CPU's everyday work), prints the count, and halts
; with interrupts off (`cli; hlt`), which ends a `--bare` run.
;
;   deno run -A repl.ts --bare --run 16 examples/hello.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN


_start:
        mov esp, stack_top
        mov esi, greeting
        call puts

        ; count primes in [2, LIMIT)
        xor edi, edi                    ; count
        mov ebx, 2                      ; candidate
.next:  cmp ebx, 20000
        jae .done
        mov ecx, 2                      ; divisor
.try:   mov eax, ecx
        mul ecx                         ; edx:eax = divisor^2
        cmp eax, ebx
        ja .prime                       ; divisor^2 > candidate: prime
        mov eax, ebx
        xor edx, edx
        div ecx
        test edx, edx
        jz .composite
        inc ecx
        jmp .try
.prime: inc edi
.composite:
        inc ebx
        jmp .next
.done:
        mov esi, result
        call puts
        mov eax, edi
        call putdec
        mov al, 10
        call putc
        cli
        hlt

%include "serial.inc"

greeting: db "Hello from lguest.ts: an i386 in TypeScript.", 10, 0
result:   db "primes below 20000: ", 0

        align 16
        times 4096 db 0
stack_top:

ELF_END
