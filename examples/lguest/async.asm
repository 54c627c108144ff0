; output: elf
;
; async: the asynchronous hypercall ring, and the GDT/TLS hypercalls.
;
; Part 1, the ring (lguest_data.hcall_status / hcalls, §2.3). The guest maps
; eight pages at WIN (0x300000 + i*4K) to physical pages A_i and reads them
; (so the host's shadow now maps them). Then it points its own PTEs at other
; pages B_i and queues one LHCALL_SET_PTE per page in the ring — fill
; hcalls[i], then hcall_status[i] = 0 — as Linux does in lazy-MMU mode. The
; host runs queued calls only when the guest next makes a synchronous
; hypercall, so until then the CPU keeps using the old shadow entries: the
; guest still reads A_i through WIN and sees status bytes still 0. After
; LHCALL_FLUSH_ASYNC the host has run all eight (status bytes back to 0xFF)
; and the guest reads B_i.
;
; Part 2, segments. LHCALL_LOAD_TLS hands the host three descriptors from
; guest memory (GDT entries 6..8); LHCALL_LOAD_GDT_ENTRY one more (entry 20).
; The host fixes each up: DPL 0 becomes DPL 1, and the accessed bit is set.
; The guest loads GS with TLS selector 0x33 (DPL 3 data with a non-zero base)
; and FS with its entry 20 (DPL 0 as written), reads through both to show the
; bases are honoured, and uses LAR (unprivileged) to read back the access
; rights the CPU really sees: DPL 1 and accessed where it wrote DPL 0.
;
;   deno run -A repl.ts --run 16 examples/lguest/async.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

PGDIR           equ 0x120000
PTES            equ 0x121000            ; PTEs for virtual 0..4 MiB
NPAGES          equ 8
WIN             equ 0x300000            ; the window: NPAGES pages, remapped through the ring
A_PHYS          equ 0x380000            ; first mapping
B_PHYS          equ 0x3c0000            ; second mapping
TLS_BASE        equ 0x390000            ; the base of the TLS data segment
FS_BASE         equ 0x398000            ; the base of GDT entry 20

%define PTE_OF(va) (PTES + ((va) >> 12) * 4)

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `async: the async hypercall ring, LOAD_TLS and LOAD_GDT_ENTRY\n`

        ; identity map 0..4 MiB, except the window, which maps A_i
        FILL_PTES PTES, PTE_P | PTE_RW, 1024
        xor ecx, ecx
.win:   mov eax, ecx
        shl eax, 12
        add eax, A_PHYS | PTE_P | PTE_RW
        mov [PTE_OF(WIN) + ecx * 4], eax
        ; a marker in each physical page: "A" + i in A_i, "B" + i in B_i
        mov eax, ecx
        shl eax, 12
        lea edx, [ecx + 'A' * 256]
        mov [A_PHYS + eax], edx
        lea edx, [ecx + 'B' * 256]
        mov [B_PHYS + eax], edx
        inc ecx
        cmp ecx, NPAGES
        jb .win
        mov edi, PGDIR
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PGDIR], PTES | 0x063
        HCALL LHCALL_NEW_PGTABLE, PGDIR

        call read_window
        SHOW "window reads (A = 0x41xx): ", [window_sum]
        cmp dword [window_sum], NPAGES * 'A' * 256 + (NPAGES * (NPAGES - 1)) / 2
        CHECK e, "the window maps the A pages"

        ; --- remap the window to B_i: our PTEs, then SET_PTE queued in the ring
        xor ecx, ecx
.queue: mov eax, ecx
        shl eax, 12
        lea edx, [eax + (B_PHYS | PTE_P | PTE_RW | PTE_A | PTE_D)]
        mov [PTE_OF(WIN) + ecx * 4], edx
        imul ebx, ecx, 20
        mov dword [lguest_data + LD_HCALLS + ebx], LHCALL_SET_PTE
        mov dword [lguest_data + LD_HCALLS + ebx + 4], PGDIR
        add eax, WIN
        mov [lguest_data + LD_HCALLS + ebx + 8], eax
        mov [lguest_data + LD_HCALLS + ebx + 12], edx
        mov dword [lguest_data + LD_HCALLS + ebx + 16], 0
        mov byte [lguest_data + LD_HCALL_STATUS + ecx], 0      ; ready
        inc ecx
        cmp ecx, NPAGES
        jb .queue
        PUTS `8 SET_PTEs queued in the ring\n`

        call status_sum
        SHOW "status bytes before the flush (sum): ", [status]
        cmp dword [status], 0
        CHECK e, "the host has not run them yet (status still 0)"
        call read_window
        SHOW "window reads before the flush: ", [window_sum]
        cmp dword [window_sum], NPAGES * 'A' * 256 + (NPAGES * (NPAGES - 1)) / 2
        CHECK e, "the CPU still uses the old mappings"

        HCALL LHCALL_FLUSH_ASYNC
        PUTS `LHCALL_FLUSH_ASYNC\n`
        call status_sum
        SHOW "status bytes after the flush (sum): ", [status]
        cmp dword [status], NPAGES * 0xff
        CHECK e, "the host ran them all and set each status back to 0xFF"
        call read_window
        SHOW "window reads after the flush (B = 0x42xx): ", [window_sum]
        cmp dword [window_sum], NPAGES * 'B' * 256 + (NPAGES * (NPAGES - 1)) / 2
        CHECK e, "the window now maps the B pages"

        ; --- TLS and GDT entries
        mov dword [TLS_BASE], 0x7157da7a
        mov dword [FS_BASE], 0xf5da7a20
        HCALL LHCALL_LOAD_TLS, tls_desc, 0
        HCALL LHCALL_LOAD_GDT_ENTRY, 20, [gdt20], [gdt20 + 4]
        PUTS `LOAD_TLS (entries 6..8) and LOAD_GDT_ENTRY 20\n`
        mov ax, 0x33                    ; TLS entry 6, RPL 3
        mov gs, ax
        mov eax, [gs:0]
        mov [through_gs], eax
        SHOW "gs:0 with GS = 0x33: ", [through_gs]
        cmp dword [through_gs], 0x7157da7a
        CHECK e, "the TLS segment's base is honoured"
        mov ax, 20 * 8 + 1              ; entry 20, RPL 1
        mov fs, ax
        mov eax, [fs:0]
        mov [through_fs], eax
        SHOW "fs:0 with FS = 0xA1: ", [through_fs]
        cmp dword [through_fs], 0xf5da7a20
        CHECK e, "the base of GDT entry 20 is honoured"

        mov ecx, 0x3b                   ; TLS entry 7 with RPL 3: RPL > DPL 1
        lar eax, ecx
        CHECK nz, "LAR refuses 0x3B (RPL 3 is above the fixed-up DPL 1)"
        mov ecx, 0x39                   ; TLS entry 7 with RPL 1
        lar eax, ecx
        CHECK z, "LAR accepts 0x39 at ring 1"
        mov [rights], eax
        SHOW "LAR of 0x39: ", [rights]
        mov eax, [rights]
        and eax, 0x6100
        cmp eax, 0x2100
        CHECK e, "TLS entry 7: DPL 0 became DPL 1, accessed set"
        mov ecx, 20 * 8 + 1
        lar eax, ecx
        CHECK z, "LAR accepts GDT entry 20 at ring 1"
        mov [rights], eax
        SHOW "LAR of 0xA1: ", [rights]
        mov eax, [rights]
        and eax, 0x6100
        cmp eax, 0x2100
        CHECK e, "GDT entry 20: DPL 0 became DPL 1, accessed set"
        mov ecx, 0x33
        lar eax, ecx
        mov [rights], eax
        SHOW "LAR of 0x33: ", [rights]
        mov eax, [rights]
        and eax, 0x6100
        cmp eax, 0x6100
        CHECK e, "TLS entry 6 kept DPL 3"
        cmp dword [tls_desc + 12], 0x00cf9200
        CHECK e, "the guest's own copy of the descriptors is untouched"
        jmp finish

; read_window: window_sum = the sum of the first dword of each window page
read_window:
        xor eax, eax
        xor ecx, ecx
.next:  mov edx, ecx
        shl edx, 12
        add eax, [WIN + edx]
        inc ecx
        cmp ecx, NPAGES
        jb .next
        mov [window_sum], eax
        ret

; status_sum: status = the sum of the first NPAGES status bytes
status_sum:
        xor eax, eax
        xor ecx, ecx
.next:  movzx edx, byte [lguest_data + LD_HCALL_STATUS + ecx]
        add eax, edx
        inc ecx
        cmp ecx, NPAGES
        jb .next
        mov [status], eax
        ret

        align 8
; three TLS descriptors: 6 = data, base TLS_BASE, DPL 3; 7 = flat data, DPL 0; 8 = empty
tls_desc:
        dd ((TLS_BASE & 0xffff) << 16) | 0xffff
        dd (TLS_BASE & 0xff000000) | 0x00cff200 | ((TLS_BASE >> 16) & 0xff)
        dd 0x0000ffff, 0x00cf9200
        dd 0, 0
; GDT entry 20: data, base FS_BASE, DPL 0
gdt20:
        dd ((FS_BASE & 0xffff) << 16) | 0xffff
        dd (FS_BASE & 0xff000000) | 0x00cf9200 | ((FS_BASE >> 16) & 0xff)

window_sum:     dd 0
status:         dd 0
through_gs:     dd 0
through_fs:     dd 0
rights:         dd 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
