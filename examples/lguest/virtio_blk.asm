; output: elf
;
; virtio_blk: a driver for the virtio block device over the modern PCI
; transport (the driver core is examples/include/virtio.inc), the way
; Linux's virtio_blk uses it, checking every answer.
;
;  1. The function in slot 2 is 1AF4:1042; the status dance accepts VERSION_1
;     and SEG_MAX; the device config gives the capacity in sectors.
;  2. Requests, each a chain {header; data; status byte}, each kicked and
;     waited for (its interrupt, the ISR read), each status checked:
;     GET_ID (printed: "id: ..."), read sector 0, write sector 1 with sector
;     0's bytes inverted, read sector 1 back and compare, FLUSH, a read of the
;     sector just past the end (IOERR), a request of type 99 (UNSUPP).
;
;   deno run -A repl.ts --run --block=disk.img 16 examples/lguest/virtio_blk.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"
VIRTIO_SLOT equ 2
%include "virtio.inc"

T_IN    equ 0
T_OUT   equ 1
T_FLUSH equ 4
T_GET_ID equ 8
F_SEG_MAX equ 1 << 2

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `virtio_blk: the block device over the modern PCI transport\n`
        LOAD_GATE 32 + VIRTIO_SLOT, vio_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~(1 << VIRTIO_SLOT)
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200

        mov eax, 0x10421af4
        mov edx, F_SEG_MAX
        call vio_start
        test dword [vio_features], F_SEG_MAX
        CHECK nz, "SEG_MAX offered"
        mov ebx, [vio_bar0]
        mov eax, [ebx + VIO_CONFIG]
        mov [capacity], eax
        SHOW "capacity: ", eax
        mov eax, [ebx + VIO_CONFIG + 12]
        SHOW "seg_max: ", eax

        ; GET_ID: 20 bytes
        mov eax, T_GET_ID
        xor ecx, ecx
        mov edi, idbuf
        mov edx, 20
        mov esi, VIO_DESC_F_WRITE
        call blk_request
        cmp byte [status], 0
        CHECK e, "GET_ID: OK"
        PUTS "id: "
        mov esi, idbuf
        call early_puts
        call early_newline

        ; read sector 0
        mov eax, T_IN
        xor ecx, ecx
        mov edi, sector0
        mov edx, 512
        mov esi, VIO_DESC_F_WRITE
        call blk_request
        cmp byte [status], 0
        CHECK e, "read sector 0: OK"
        cmp eax, 513
        CHECK e, "used length: 512 bytes and the status"
        SHOW "sector 0 starts: ", [sector0]

        ; write sector 1: sector 0 inverted
        mov ecx, 128
        xor ebx, ebx
.inv:   mov eax, [sector0 + ebx * 4]
        not eax
        mov [written + ebx * 4], eax
        inc ebx
        loop .inv
        mov eax, T_OUT
        mov ecx, 1
        mov edi, written
        mov edx, 512
        xor esi, esi
        call blk_request
        cmp byte [status], 0
        CHECK e, "write sector 1: OK"

        ; read it back
        mov eax, T_IN
        mov ecx, 1
        mov edi, readback
        mov edx, 512
        mov esi, VIO_DESC_F_WRITE
        call blk_request
        cmp byte [status], 0
        CHECK e, "read sector 1: OK"
        mov esi, written
        mov edi, readback
        mov ecx, 512
        repe cmpsb
        CHECK e, "sector 1 reads back as written"

        ; FLUSH
        mov eax, T_FLUSH
        xor ecx, ecx
        xor edi, edi
        call blk_request
        cmp byte [status], 0
        CHECK e, "FLUSH: OK"

        ; a read past the end
        mov eax, T_IN
        mov ecx, [capacity]             ; the first sector past the end
        mov edi, readback
        mov edx, 512
        mov esi, VIO_DESC_F_WRITE
        call blk_request
        cmp byte [status], 1
        CHECK e, "a read past the end: IOERR"

        ; an unknown request type
        mov eax, 99
        xor ecx, ecx
        xor edi, edi
        call blk_request
        cmp byte [status], 2
        CHECK e, "request type 99: UNSUPP"
        SHOW "interrupts: ", [vio_irqs]
        jmp finish

; blk_request: type EAX, sector ECX; data buffer EDI (0: none) of EDX bytes,
; its descriptor flags ESI (VIO_DESC_F_WRITE for a read). The status byte is
; left in [status] (0xff before), the used length returned in EAX.
blk_request:
        mov [header], eax
        mov dword [header + 4], 0
        mov [header + 8], ecx
        mov dword [header + 12], 0
        mov byte [status], 0xff
        push edx
        mov eax, header
        mov edx, 16
        mov ebx, VIO_DESC_F_NEXT
        xor ecx, ecx
        call vio_desc
        pop edx
        test edi, edi
        jz .status
        mov eax, edi
        mov ebx, esi
        or ebx, VIO_DESC_F_NEXT
        inc ecx
        call vio_desc
.status:
        mov eax, status
        mov edx, 1
        mov ebx, VIO_DESC_F_WRITE
        inc ecx
        call vio_desc
        jmp vio_kick

        align 4
capacity:       dd 0
header:         times 16 db 0
status:         db 0
idbuf:          times 21 db 0
        align 4
sector0:        times 512 db 0
written:        times 512 db 0
readback:       times 512 db 0

        align 4096
vio_queue:      times 0x300 db 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
