; output: elf
;
; usermode: a guest kernel with a ring-3 task, and everything between them
; that the host has a hand in.
;
; The kernel (ring 1) builds page tables where only the task's code and
; stack pages are user pages (U/S), installs GDT entries 14/15 for user code
; and data (DPL 3: selectors 0x73/0x7B), tells the host its kernel stack
; (LHCALL_SET_STACK: SS 0x69, 2 pages), installs gates for the system call
; (0x80, DPL 3), #PF (14) and #GP (13), and IRETs to ring 3. The task then:
;  1. makes system calls (`int $0x80`): the host switches to the kernel stack
;     it was given (ss1:esp1) and pushes the task's SS and ESP above EFLAGS,
;     CS and EIP — the kernel checks that frame word by word;
;  2. writes to a page that is not mapped: a user page fault (error code 6:
;     user, write, not present) that the kernel handles by mapping a page and
;     returning, so the write is retried;
;  3. reads a kernel (supervisor-only) page: error code 5 (user, present),
;     which the kernel answers like a signal, resuming the task elsewhere;
;  4. tries a hypercall from ring 3: the host's gate for 0x1F has DPL 1, so
;     it is a #GP with error code 0xFA (0x1F*8 + 2), reflected to the kernel;
;  5. asks the kernel to power off (system call 3).
;
;   deno run -A repl.ts --run 16 examples/lguest/usermode.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PGDIR           equ 0x120000
PTES            equ 0x121000            ; PTEs for virtual 0..4 MiB
UPAGE           equ 0x300000            ; the task's page that is not mapped at first
UPAGE_PHYS      equ 0x380000            ; where the kernel maps it
SYS_PUTS        equ 1                   ; ebx = string
SYS_SHOW        equ 2                   ; ebx = label, ecx = value
SYS_EXIT        equ 3

%define PTE_OF(va) (PTES + ((va) >> 12) * 4)

_start:
        mov esp, kstack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `usermode: a guest kernel at ring 1 and a task at ring 3\n`

        ; identity-map 0..4 MiB for the kernel only (P|RW), then open the
        ; task's code and stack pages to ring 3 (U/S)
        FILL_PTES PTES, PTE_P | PTE_RW, 1024
        mov dword [PTE_OF(UPAGE)], 0
        mov eax, user_code
.user:  mov ebx, eax
        shr ebx, 12
        or dword [PTES + ebx * 4], PTE_US
        add eax, 4096
        cmp eax, user_end
        jb .user
        mov edi, PGDIR
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PGDIR], PTES | 0x067 ; _PAGE_TABLE: user pages allowed below
        HCALL LHCALL_NEW_PGTABLE, PGDIR

        HCALL LHCALL_LOAD_GDT_ENTRY, 14, 0x0000ffff, 0x00cffa00     ; user code, DPL 3
        HCALL LHCALL_LOAD_GDT_ENTRY, 15, 0x0000ffff, 0x00cff200     ; user data, DPL 3
        HCALL LHCALL_SET_STACK, KERNEL_DS, kstack_top, 2
        LOAD_GATE 0x80, syscall_entry, 3
        LOAD_GATE 14, pf_entry, 0
        LOAD_GATE 13, gp_entry, 0
        PUTS `page tables, user segments, kernel stack and gates are set: to ring 3\n`

        mov ax, USER_DS
        mov ds, ax
        mov es, ax
        push dword USER_DS              ; SS
        push dword ustack_top           ; ESP
        push dword 0x202                ; EFLAGS: IF
        push dword USER_CS              ; CS
        push dword user_entry           ; EIP
        jmp lguest_iret

; ---------------------------------------------------------------- the kernel's entries

; int $0x80 from the task: EAX = call, EBX/ECX = arguments. The frame the
; host built: EIP, CS, EFLAGS, ESP, SS (of the task).
syscall_entry:
        mov [entry_esp], esp
        mov [entry_ss], ss
        pushad
        inc dword [syscalls]
        cmp dword [syscalls], 1
        jne .dispatch
        call check_first_frame
.dispatch:
        mov eax, [esp + 28]             ; the saved EAX
        cmp eax, SYS_PUTS
        je .puts
        cmp eax, SYS_SHOW
        je .show
        cmp eax, SYS_EXIT
        je .exit
        PUTS `FAIL: unknown system call\n`
        inc dword [checks_failed]
        jmp .ret
.puts:  mov esi, [esp + 16]             ; the saved EBX
        call early_puts
        jmp .ret
.show:  mov esi, [esp + 16]
        call early_puts
        mov eax, [esp + 24]             ; the saved ECX
        call early_puthex
        call early_newline
        jmp .ret
.exit:  PUTS `the task asked to power off\n`
        SHOW "system calls: ", [syscalls]
        SHOW "user page faults: ", [user_faults]
        cmp dword [user_faults], 2
        CHECK e, "two user page faults reached the kernel"
        cmp dword [user_gps], 1
        CHECK e, "one user #GP reached the kernel"
        jmp finish
.ret:   popad
        jmp lguest_iret

; Check the first system call's frame, entered from ring 3.
check_first_frame:
        PUTS `first system call: checking the frame the host built\n`
        cmp dword [entry_esp], kstack_top - 20
        CHECK e, "the host switched to the SET_STACK stack: ESP = top - 20"
        cmp word [entry_ss], KERNEL_DS
        CHECK e, "SS = 0x69, the SET_STACK segment"
        mov ebp, [entry_esp]
        cmp dword [ebp], user_syscall1_ret
        CHECK e, "frame EIP: after the task's int $0x80"
        cmp dword [ebp + 4], USER_CS
        CHECK e, "frame CS: 0x73 (ring 3)"
        test dword [ebp + 8], 0x200
        CHECK nz, "frame EFLAGS: IF (the task ran with interrupts on)"
        cmp dword [ebp + 12], ustack_top
        CHECK e, "frame ESP: the task's stack pointer"
        cmp dword [ebp + 16], USER_DS
        CHECK e, "frame SS: 0x7B"
        cmp dword [lguest_data + LD_IRQ_ENABLED], 0
        CHECK e, "the interrupt gate cleared irq_enabled"
        ret

; #PF: error code, EIP, CS, EFLAGS[, ESP, SS]
pf_entry:
        pushad
        mov eax, [lguest_data + LD_CR2]
        mov [pf_cr2], eax
        mov eax, [esp + 32]
        mov [pf_err], eax
        test dword [esp + 40], 3        ; the frame's CS: from ring 3?
        jz .kernel
        cmp dword [esp + 40], USER_CS
        jne .kernel
        inc dword [user_faults]
        PUTS "user page fault at "
        mov eax, [pf_cr2]
        call early_puthex
        PUTS " error "
        mov eax, [pf_err]
        call early_puthex
        call early_newline
        test dword [pf_err], 1          ; present: a protection fault
        jnz .segv
        cmp dword [pf_cr2], UPAGE
        jb .kernel
        cmp dword [pf_cr2], UPAGE + 4096
        jae .kernel
        cmp dword [pf_err], 6
        CHECK e, "error code 6: user, write, not present"
        PUTS `mapping a user page there (PTE + LHCALL_SET_PTE)\n`
        mov dword [PTE_OF(UPAGE)], UPAGE_PHYS | PTE_P | PTE_RW | PTE_US
        HCALL LHCALL_SET_PTE, PGDIR, UPAGE, UPAGE_PHYS | PTE_P | PTE_RW | PTE_US
        jmp .ret
.segv:  cmp dword [pf_err], 5
        CHECK e, "error code 5: user, read, present (a supervisor page)"
        mov dword [esp + 36], user_segv ; like a signal: resume the task elsewhere
        jmp .ret
.kernel:
        PUTS "FAIL: unexpected page fault at "
        mov eax, [pf_cr2]
        call early_puthex
        call early_newline
        inc dword [checks_failed]
        jmp finish
.ret:   popad
        add esp, 4
        jmp lguest_iret

; #GP: error code, EIP, CS, EFLAGS[, ESP, SS]
gp_entry:
        pushad
        cmp dword [esp + 40], USER_CS
        jne .kernel
        inc dword [user_gps]
        SHOW "user #GP, error ", [esp + 32]
        cmp dword [esp + 32], 0x1f * 8 + 2
        CHECK e, "a hypercall from ring 3 is #GP(0xFA): the host's gate has DPL 1"
        add dword [esp + 36], 2         ; skip the int $0x1f
        popad
        add esp, 4
        jmp lguest_iret
.kernel:
        SHOW "FAIL: kernel #GP, error ", [esp + 32]
        inc dword [checks_failed]
        jmp finish

        align 4
entry_esp:      dd 0
entry_ss:       dd 0
syscalls:       dd 0
user_faults:    dd 0
user_gps:       dd 0
pf_cr2:         dd 0
pf_err:         dd 0
kernel_secret:  dd 0x5ec2e7

        LGUEST_DATA lguest_noirq_iret

; ---------------------------------------------------------------- the task (ring 3)
; Its own pages: code and data, then its stack. It cannot print (port I/O
; needs ring 1), so it asks the kernel.

        align 4096
user_code:
user_entry:
        mov eax, SYS_PUTS
        mov ebx, u_hello
        int 0x80
user_syscall1_ret:
        mov ecx, cs
        mov eax, SYS_SHOW
        mov ebx, u_cs
        int 0x80
        ; a page that is not mapped: the kernel maps it, the write is retried
        mov dword [UPAGE + 8], 0xfeedface
        mov ecx, [UPAGE + 8]
        mov eax, SYS_SHOW
        mov ebx, u_upage
        int 0x80
        ; a kernel page: the kernel resumes us at user_segv
        mov eax, [kernel_secret]
        mov eax, SYS_PUTS
        mov ebx, u_oops
        int 0x80
user_segv:
        mov eax, SYS_PUTS
        mov ebx, u_segv
        int 0x80
        ; a hypercall from ring 3
        int 0x1f
        mov eax, SYS_PUTS
        mov ebx, u_after_gp
        int 0x80
        mov eax, SYS_EXIT
        int 0x80
.hang:  jmp .hang

u_hello:        db `hello from ring 3\n`, 0
u_cs:           db "the task's CS: ", 0
u_upage:        db "the task read back from its new page: ", 0
u_oops:         db `FAIL: the task read a kernel page\n`, 0
u_segv:         db `the task was resumed after its bad read\n`, 0
u_after_gp:     db `the task goes on after its #GP\n`, 0

        align 4096
        times 4096 db 0
ustack_top:
user_end:

        align 4096
        times 8192 db 0                 ; the kernel stack: 2 pages
kstack_top:

ELF_END
