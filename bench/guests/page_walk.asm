; page_walk: every access touches a new page (flat binary at 0x1000).
; Builds identity page tables for the first 8 MiB, turns paging on, then reads
; one dword from each of 1024 consecutive pages at 4 MiB, over and over: four
; instructions per access (ADD r,[m]; ADD; DEC; JNZ). EDX holds the number of
; passes on entry; ends with cli; hlt.
        bits 32
        org 0x1000
PGDIR   equ 0x10000
PGTAB   equ 0x11000
        mov edi, PGTAB
        mov eax, 0x003                  ; present | writable, frame 0
        mov ecx, 2048                   ; two page tables: 8 MiB
.fill:  stosd
        add eax, 0x1000
        dec ecx
        jnz .fill
        mov dword [PGDIR], PGTAB + 0x003
        mov dword [PGDIR + 4], PGTAB + 0x1000 + 0x003
        mov eax, PGDIR
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
.pass:  mov esi, 0x400000
        mov ecx, 1024
.touch: add eax, [esi]
        add esi, 4096
        dec ecx
        jnz .touch
        dec edx
        jnz .pass
        cli
        hlt
