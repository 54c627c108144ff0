; boot2007: booting the way the 2007 lguest launcher (Linux 2.6.23/24) did.
;
; The kernel file is a gzip stream (OS byte 3, "Unix"); the launcher inflates
; it to 1 MiB and enters it just after the magic string "GenuineLguest"
; (this file is assembled flat, then examples/lguest/make2007.ts gzips
; boot2007.bin into boot2007.img). Paging is on from the first instruction:
; the launcher built page tables mapping all of RAM virtual == physical,
; flags 7 (P|RW|US), the page directory at the top of RAM (just below the
; initrd, if any) and the PTE pages just below it, and the host walks those
; tables from the start instead of faking a linear mapping.
;
; The guest was not told where those tables are (the 2007 launcher told only
; the host), so it works the address out the way the launcher chose it: from
; the e820 map and the ramdisk fields of boot_params. It checks the directory
; entries, then shows the host walking the tables: the host sets A in the PTEs
; of the pages it has fetched code from, A and D in its stack's, and A then D
; in a page it reads and then writes. In linear mode no A or D would appear.
;
;   deno run -A repl.ts --run --pagetables=launcher 16 examples/lguest/boot2007.img

        bits 32
        org 0x100000
        db "GenuineLguest"              ; the entry point follows the magic
        jmp start

%include "lguest.inc"

PROBE           equ 0x400000            ; a page nobody has touched

start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `boot2007: entered after "GenuineLguest", paging on from the start\n`

        ; where the launcher put its page directory: the top of RAM, or the initrd
        mov eax, [BP_E820_MAP + 8]      ; e820_map[0].size: all of RAM
        mov [ram_size], eax
        cmp dword [BP_RAMDISK_SIZE], 0
        je .noinitrd
        mov eax, [BP_RAMDISK_IMAGE]
.noinitrd:
        sub eax, 4096
        mov [pgdir], eax
        SHOW "RAM size:                ", [ram_size]
        SHOW "launcher's page directory: ", [pgdir]
        ; PTE pages: one per 4 MiB of RAM, just below the directory
        mov eax, [ram_size]
        add eax, 0x3fffff
        shr eax, 22
        mov [pte_pages], eax
        shl eax, 12
        neg eax
        add eax, [pgdir]
        mov [first_pte], eax
        SHOW "first PTE page:          ", [first_pte]
        mov esi, [pgdir]
        cmp dword [esi], 0
        jne .tables
        PUTS `no page tables from the launcher: run with --pagetables=launcher\n`
        mov esi, no_tables
        jmp poweroff
.tables:

        ; the directory: entry k -> PTE page k, flags 7; nothing after them
        mov esi, [pgdir]
        mov edi, [first_pte]
        xor ecx, ecx
.pde:   mov eax, edi
        or eax, PTE_P | PTE_RW | PTE_US
        cmp [esi + ecx * 4], eax
        jne .pde_bad
        add edi, 4096
        inc ecx
        cmp ecx, [pte_pages]
        jb .pde
        cmp dword [esi + ecx * 4], 0
.pde_bad:
        CHECK e, "directory entries: one per PTE page, flags 7, then none"
        mov esi, [pgdir]
        SHOW "pgd[0]:                  ", [esi]

        ; the PTEs of pages the guest has already used
        mov esi, [first_pte]
        SHOW "pte of the code page:    ", [esi + (0x100000 >> 12) * 4]
        mov eax, [esi + (0x100000 >> 12) * 4]
        and eax, ~PTE_D                 ; (its variables are written too)
        cmp eax, 0x100000 | 7 | PTE_A
        CHECK e, "the host set A in the code page's PTE (fetches walk these tables)"
        mov eax, stack_top - 4
        shr eax, 12
        mov eax, [esi + eax * 4]
        mov [stack_pte], eax
        SHOW "pte of the stack page:   ", [stack_pte]
        mov eax, [stack_pte]
        and eax, 0xfff
        cmp eax, 7 | PTE_A | PTE_D
        CHECK e, "the host set A and D in the stack page's PTE"

        ; a page nobody touched, then read, then written
        SHOW "pte of PROBE, untouched: ", [esi + (PROBE >> 12) * 4]
        cmp dword [esi + (PROBE >> 12) * 4], PROBE | 7
        CHECK e, "an untouched page's PTE is as the launcher wrote it (0x007)"
        mov eax, [PROBE]
        SHOW "pte of PROBE after read: ", [esi + (PROBE >> 12) * 4]
        cmp dword [esi + (PROBE >> 12) * 4], PROBE | 7 | PTE_A
        CHECK e, "reading it set A"
        mov dword [PROBE], 2007
        SHOW "pte of PROBE after write: ", [esi + (PROBE >> 12) * 4]
        cmp dword [esi + (PROBE >> 12) * 4], PROBE | 7 | PTE_A | PTE_D
        CHECK e, "writing it set D"
        jmp finish

no_tables:      db "no launcher page tables", 0
        align 4
ram_size:       dd 0
pgdir:          dd 0
pte_pages:      dd 0
first_pte:      dd 0
stack_pte:      dd 0

        LGUEST_DATA lguest_noirq_iret
        align 4096
        times 4096 db 0
stack_top:
