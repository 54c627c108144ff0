; alu_loop: the tight ALU loop of the CPU benchmark (flat binary at 0x1000).
; Five instructions per iteration, all in one page: ADD, XOR, SUB, DEC, JNZ.
; ECX holds the iteration count on entry; ends with cli; hlt.
        bits 32
        org 0x1000
.loop:  add eax, ebx
        xor edx, eax
        sub esi, 3
        dec ecx
        jnz .loop
        cli
        hlt
