; output: elf
;
; hostile: a guest that misbehaves on purpose. Every variant does one thing
; the host must refuse, and the host's answer is to kill the guest with a
; one-line reason — never to crash, and never to touch memory outside the
; guest's RAM on its behalf. Since a kill ends a guest, the variant is chosen
; on the kernel command line, which the guest reads at boot_params.cmd_line_ptr
; (0x1000); with no known variant it lists them and powers off.
;
;   deno run -A repl.ts --run 16 examples/lguest/hostile.elf gdt40
;
; The variants (the reason each dies with is asserted in tests/lguest_test.ts):
;   early      a hypercall before LHCALL_LGUEST_INIT
;   init2      LHCALL_LGUEST_INIT twice
;   ldata      lguest_data outside RAM
;   syscallvec lguest_data.syscall_vec is not 0x80
;   kaddr      lguest_data.kernel_address inside the switcher
;   badcall    hypercall 3 (NOTIFY, retired in 4.9)
;   asyncbad   hypercall 3 through the async ring
;   idttype    LOAD_IDT_ENTRY with a task gate (type 5)
;   idtvec     LOAD_IDT_ENTRY for vector 256
;   gdt40      LOAD_GDT_ENTRY for entry 40 (there are 32)
;   tls        LOAD_TLS from outside RAM
;   stackss    SET_STACK with a ring-0 stack segment (0x68)
;   stack3     SET_STACK with 3 pages (at most 2)
;   stackpage  SET_STACK with a stack that is not mapped
;   pgdir      NEW_PGTABLE outside RAM
;   pte        a PTE pointing outside RAM, then touching it
;   hostpage   a PTE pointing at the host's own page above RAM (its GDT)
;   pgd        a page-directory entry pointing outside RAM, then touching it
;   setpte     SET_PTE of a PTE outside RAM with A set (installed at once)
;   setpgd     SET_PGD with index 1025
;   switcher   SET_PTE into the switcher's address range
;   gdtwrite   a write to the host's GDT where it is mapped (0xFFC00000)
;   ring0      an IRET to the host's ring-0 code segment (0x50)
;   gdt10      LOAD_GDT_ENTRY 10 (the host's own), then a far jump through it
;   callgate   a call gate in the GDT to the host's code segment, then a far call
;   notrap     an invalid opcode with no IDT entry for it
;   hlt        HLT at ring 1 (a #GP the launcher does not emulate)
;   badframe   a trap whose frame cannot be pushed (ESP outside RAM)
;   shutdown   LHCALL_SHUTDOWN with a message outside RAM
;   stackhost  SET_STACK with the host's data segment (0x59: entry 11, RPL 1)
;   stacknull  SET_STACK with a null selector (0x1)
;   stackgdt   SET_STACK 0x69, then entry 13 made a code segment, then int $0x80
;              from ring 3 (the host would load that SS)
;   kernelcs   LOAD_GDT_ENTRY 12 (KERNEL_CS) as a data segment, then a trap (the
;              host would enter the handler with that CS)
;   pfloop     a #PF handler on a page that is not present, then a fault: every
;              delivery faults again, and no instruction ever completes
;   pdero      a page-directory entry without RW over writable PTEs, then a write
;   pdeus      a page-directory entry without US over user PTEs, then a ring-3 read
;   pmdro      (PAE host) a PMD entry without RW over writable PTEs, then a write
; (the last three are faults the guest's own tables raise: with no #PF handler
; they kill it, where a host that called them fixed would spin for ever)

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PGDIR           equ 0x120000
PTES            equ 0x121000
OUTSIDE         equ 0x40000000          ; far beyond RAM and the device window
HOST_GDT        equ 0x01101000          ; with 16 MiB: the first host page (the GDT)
PAE_PDPT        equ 0x122000            ; pmdro's PAE tables: PDPT, one PMD, one PTE page
PAE_PMD         equ 0x123000
PAE_PT          equ 0x124000

_start:
        mov esp, stack_top
        mov esi, [BP_CMD_LINE_PTR]
        mov ebx, variants
.try:   cmp byte [ebx], 0
        je .none
        xor ecx, ecx
.cmp:   mov al, [esi + ecx]
        cmp al, ' '
        jne .c1
        xor al, al
.c1:    cmp al, [ebx + ecx]
        jne .next
        test al, al
        jz .found
        inc ecx
        cmp ecx, 16
        jb .cmp
.next:  add ebx, 20
        jmp .try
.found: PUTS "hostile: "
        mov esi, ebx
        call early_puts
        PUTS ": "
        jmp [ebx + 16]
.none:  HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS "hostile: choose a variant on the command line:"
        mov ebx, variants
.list:  cmp byte [ebx], 0
        je .done
        PUTS " "
        mov esi, ebx
        call early_puts
        add ebx, 20
        jmp .list
.done:  call early_newline
        jmp finish

; init: LHCALL_LGUEST_INIT with our lguest_data
init:
        HCALL LHCALL_LGUEST_INIT, lguest_data
        ret

; own_tables: identity-map 0..4 MiB with our own tables (PTEs P|RW) and switch to them
own_tables:
        FILL_PTES PTES, PTE_P | PTE_RW, 1024
        mov edi, PGDIR
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PGDIR], PTES | 0x063
        HCALL LHCALL_NEW_PGTABLE, PGDIR
        ret

; user_tables: identity-map 0..4 MiB for ring 3 too (PTEs and PGDIR[0] with US)
user_tables:
        FILL_PTES PTES, PTE_P | PTE_RW | PTE_US, 1024
        mov edi, PGDIR
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PGDIR], PTES | 0x067
        HCALL LHCALL_NEW_PGTABLE, PGDIR
        ret

; RING3 target: load the user segments and IRET to `target` at ring 3
%macro RING3 1
        HCALL LHCALL_LOAD_GDT_ENTRY, 14, 0x0000ffff, 0x00cffa00     ; user code, DPL 3
        HCALL LHCALL_LOAD_GDT_ENTRY, 15, 0x0000ffff, 0x00cff200     ; user data, DPL 3
        push dword USER_DS              ; SS
        push dword stack_top            ; ESP
        push dword 0x202                ; EFLAGS
        push dword USER_CS              ; CS
        push dword %1                   ; EIP
        jmp lguest_iret
%endmacro

%macro VARIANT 1
%%s:    db %str(%1)
        times 16 - ($ - %%s) db 0
        dd v_%1
%endmacro

        align 4
variants:
        VARIANT early
        VARIANT init2
        VARIANT ldata
        VARIANT syscallvec
        VARIANT kaddr
        VARIANT badcall
        VARIANT asyncbad
        VARIANT idttype
        VARIANT idtvec
        VARIANT gdt40
        VARIANT tls
        VARIANT stackss
        VARIANT stack3
        VARIANT stackpage
        VARIANT pgdir
        VARIANT pte
        VARIANT hostpage
        VARIANT pgd
        VARIANT setpte
        VARIANT setpgd
        VARIANT switcher
        VARIANT gdtwrite
        VARIANT ring0
        VARIANT gdt10
        VARIANT callgate
        VARIANT notrap
        VARIANT hlt
        VARIANT badframe
        VARIANT shutdown
        VARIANT stackhost
        VARIANT stacknull
        VARIANT stackgdt
        VARIANT kernelcs
        VARIANT pfloop
        VARIANT pdero
        VARIANT pdeus
        VARIANT pmdro
        db 0

v_early:
        PUTS `LHCALL_HALT before LHCALL_LGUEST_INIT\n`
        HCALL LHCALL_HALT
        jmp survived
v_init2:
        PUTS `LHCALL_LGUEST_INIT twice\n`
        call init
        call init
        jmp survived
v_ldata:
        PUTS `LHCALL_LGUEST_INIT with lguest_data straddling the end of RAM\n`
        mov ebx, [BP_E820_MAP + 8]
        sub ebx, 1000
        HCALL LHCALL_LGUEST_INIT, ebx
        jmp survived
v_syscallvec:
        PUTS `lguest_data.syscall_vec = 0x81\n`
        mov dword [lguest_data + LD_SYSCALL_VEC], 0x81
        call init
        jmp survived
v_kaddr:
        PUTS `lguest_data.kernel_address = 0xffc00000\n`
        mov dword [lguest_data + LD_KERNEL_ADDRESS], 0xffc00000
        call init
        jmp survived
v_badcall:
        PUTS `hypercall 3\n`
        call init
        HCALL 3
        jmp survived
v_asyncbad:
        PUTS `hypercall 3 queued in the async ring, then LHCALL_FLUSH_ASYNC\n`
        call init
        mov dword [lguest_data + LD_HCALLS], 3
        mov byte [lguest_data + LD_HCALL_STATUS], 0
        HCALL LHCALL_FLUSH_ASYNC
        jmp survived
v_idttype:
        PUTS `LOAD_IDT_ENTRY 32 with a task gate\n`
        call init
        HCALL LHCALL_LOAD_IDT_ENTRY, 32, KERNEL_CS << 16, 0x8500
        jmp survived
v_idtvec:
        PUTS `LOAD_IDT_ENTRY 256\n`
        call init
        HCALL LHCALL_LOAD_IDT_ENTRY, 256, KERNEL_CS << 16, 0x8e00
        jmp survived
v_gdt40:
        PUTS `LOAD_GDT_ENTRY 40\n`
        call init
        HCALL LHCALL_LOAD_GDT_ENTRY, 40, 0x0000ffff, 0x00cf9200
        jmp survived
v_tls:
        PUTS `LOAD_TLS from 0x40000000\n`
        call init
        HCALL LHCALL_LOAD_TLS, OUTSIDE, 0
        jmp survived
v_stackss:
        PUTS `SET_STACK with SS 0x68\n`
        call init
        HCALL LHCALL_SET_STACK, 0x68, stack_top, 1
        jmp survived
v_stack3:
        PUTS `SET_STACK with 3 pages\n`
        call init
        HCALL LHCALL_SET_STACK, KERNEL_DS, stack_top, 3
        jmp survived
v_stackpage:
        PUTS `SET_STACK at 0x800000, which our tables do not map\n`
        call init
        call own_tables
        HCALL LHCALL_SET_STACK, KERNEL_DS, 0x800000, 1
        jmp survived
v_pgdir:
        PUTS `NEW_PGTABLE 0x40000000\n`
        call init
        HCALL LHCALL_NEW_PGTABLE, OUTSIDE
        jmp survived
v_pte:
        PUTS `a PTE for 0x300000 pointing at 0x40000000, then a read\n`
        call init
        call own_tables
        mov dword [PTES + (0x300000 >> 12) * 4], OUTSIDE | PTE_P | PTE_RW
        mov eax, [0x300000]
        jmp survived
v_hostpage:
        PUTS `a PTE for 0x300000 pointing at the host's GDT page, then a write\n`
        call init
        call own_tables
        mov dword [PTES + (0x300000 >> 12) * 4], HOST_GDT | PTE_P | PTE_RW
        mov dword [0x300000 + 12 * 8 + 4], 0x00cf9b00    ; KERNEL_CS at DPL 0?
        jmp survived
v_pgd:
        PUTS `a page-directory entry for 0x400000 pointing at 0x40000000, then a read\n`
        call init
        call own_tables
        mov dword [PGDIR + 4], OUTSIDE | 0x067
        mov eax, [0x400000]
        jmp survived
v_setpte:
        PUTS `SET_PTE for 0x300000: 0x40000000 with A and D set\n`
        call init
        call own_tables
        mov eax, [0x300000]             ; the shadow has a PTE page for 0..4 MiB
        HCALL LHCALL_SET_PTE, PGDIR, 0x300000, OUTSIDE | PTE_P | PTE_RW | PTE_A | PTE_D
        jmp survived
v_setpgd:
        PUTS `SET_PGD index 1025\n`
        call init
        call own_tables
        HCALL LHCALL_SET_PGD, PGDIR, 1025
        jmp survived
v_switcher:
        PUTS `SET_PTE for 0xffc00000\n`
        call init
        call own_tables
        HCALL LHCALL_SET_PTE, PGDIR, 0xffc00000, 0x300000 | PTE_P | PTE_RW | PTE_A
        jmp survived
v_gdtwrite:
        PUTS `reading, then writing, the host's GDT at 0xffc00000\n`
        call init
        mov eax, [0xffc00000 + 12 * 8 + 4]      ; reading it is allowed (as on lguest)
        mov [gdt_seen], eax
        SHOW "KERNEL_CS's high dword there: ", [gdt_seen]
        PUTS "write at "
        mov eax, .write
        call early_puthex
        call early_newline
.write: mov dword [0xffc00000 + 12 * 8 + 4], 0x00cf9b00 ; ring 0
        jmp survived
v_ring0:
        PUTS "iret to 0x50 at "
        call init
        mov eax, .iret
        call early_puthex
        call early_newline
        pushfd
        push dword 0x50
        push dword survived
.iret:  iret
v_gdt10:
        PUTS "LOAD_GDT_ENTRY 10 (DPL 1 code), far jump to 0x51 at "
        call init
        HCALL LHCALL_LOAD_GDT_ENTRY, 10, 0x0000ffff, 0x00cfbb00
        mov eax, .jmp
        call early_puthex
        call early_newline
.jmp:   jmp 0x51:survived
v_callgate:
        PUTS `a call gate at GDT entry 20 to 0x50:survived, then call 0xA1:0\n`
        call init
        mov eax, survived
        and eax, 0xffff
        or eax, 0x50 << 16
        mov [gate], eax
        mov eax, survived
        and eax, 0xffff0000
        or eax, 0xac00                  ; P, DPL 1, 32-bit call gate
        mov [gate + 4], eax
        HCALL LHCALL_LOAD_GDT_ENTRY, 20, [gate], [gate + 4]
        call 0xa1:0
        jmp survived
v_notrap:
        PUTS "ud2 at "
        call init
        mov eax, .ud
        call early_puthex
        call early_newline
.ud:    ud2
        jmp survived
v_hlt:
        PUTS "hlt at "
        call init
        mov eax, .hlt
        call early_puthex
        call early_newline
.hlt:   hlt
        jmp survived
v_badframe:
        PUTS `a #UD handler, ESP = 0x40000000, ud2\n`
        call init
        LOAD_GATE 6, survived, 0
        mov esp, OUTSIDE
        ud2
        jmp survived
v_shutdown:
        PUTS `LHCALL_SHUTDOWN with the message at 0x40000000\n`
        call init
        HCALL LHCALL_SHUTDOWN, OUTSIDE, LGUEST_SHUTDOWN_POWEROFF
        jmp survived

v_pfloop:
        PUTS `a #PF handler at 0x300000, not present; a read of 0x300000\n`
        call init
        call own_tables
        mov dword [PTES + (0x300000 >> 12) * 4], 0
        LOAD_GATE 14, 0x300000, 0
        mov eax, [0x300000]
        jmp survived
v_pdero:
        PUTS "PGDIR[1] = PTEs | P A D (no RW); a read, then a write to 0x700000 at "
        call init
        call own_tables
        mov dword [PGDIR + 4], PTES | PTE_P | PTE_A | PTE_D
        mov eax, .write
        call early_puthex
        call early_newline
        mov eax, [0x700000]             ; reading is allowed
.write: mov dword [0x700000], 1         ; the PTE allows it, the directory entry does not
        jmp survived
v_pdeus:
        PUTS "user PTEs, PGDIR[1] without US; a ring-3 read of 0x700000 at "
        call init
        call user_tables
        mov dword [PGDIR + 4], PTES | 0x063   ; no US
        mov eax, .user
        call early_puthex
        call early_newline
        RING3 .user
.user:  mov eax, [0x700000]             ; the PTE allows ring 3, the directory entry does not
        jmp survived
v_stackhost:
        PUTS `SET_STACK with SS 0x59 (the host's data segment)\n`
        call init
        HCALL LHCALL_SET_STACK, 0x59, stack_top, 1
        jmp survived
v_stacknull:
        PUTS `SET_STACK with SS 0x1 (null)\n`
        call init
        HCALL LHCALL_SET_STACK, 0x1, stack_top, 1
        jmp survived
v_stackgdt:
        PUTS `SET_STACK 0x69, GDT entry 13 made code, int $0x80 from ring 3\n`
        call init
        call user_tables
        HCALL LHCALL_SET_STACK, KERNEL_DS, stack_top, 1
        HCALL LHCALL_LOAD_GDT_ENTRY, 13, 0x0000ffff, 0x00cf9a00    ; code, not a stack
        LOAD_GATE 0x80, survived, 3
        RING3 .user
.user:  int 0x80
        jmp survived
v_kernelcs:
        PUTS `LOAD_GDT_ENTRY 12 (KERNEL_CS) as a data segment, then ud2 with a #UD handler\n`
        call init
        HCALL LHCALL_LOAD_GDT_ENTRY, 12, 0x0000ffff, 0x00cf9200
        LOAD_GATE 6, survived, 0
        ud2
        jmp survived
v_pmdro:
        PUTS "(PAE) PMD[1] = PTEs | P A D (no RW); a read, then a write to 0x3ff000 at "
        call init
        mov edi, PAE_PT                 ; 512 8-byte PTEs: identity 0..2 MiB, P | RW
        mov eax, PTE_P | PTE_RW
        mov ecx, 512
.pte:   mov [edi], eax
        mov dword [edi + 4], 0
        add edi, 8
        add eax, 4096
        loop .pte
        mov edi, PAE_PMD
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PAE_PMD], PAE_PT | 0x063
        mov dword [PAE_PMD + 8], PAE_PT | PTE_P | PTE_A | PTE_D    ; 2..4 MiB: no RW
        mov edi, PAE_PDPT
        mov ecx, 8
        rep stosd
        mov dword [PAE_PDPT], PAE_PMD | PTE_P
        HCALL LHCALL_NEW_PGTABLE, PAE_PDPT
        mov eax, .write
        call early_puthex
        call early_newline
        mov eax, [0x3ff000]             ; reading is allowed
.write: mov dword [0x3ff000], 1         ; the PTE allows it, the PMD entry does not
        jmp survived

; Still alive: the host let something through. Say so and stop (from any
; ring: a ring-0 arrival reloads the kernel's segments first).
survived:
        mov esp, stack_top
        PUTS `FAIL: the host let that through\n`
        inc dword [checks_failed]
        jmp finish

        align 4
gdt_seen:       dd 0
gate:           dd 0, 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
