; output: elf
;
; console_echo: an lguest guest that reads its virtio console the way Linux's
; hvc driver does — a writable buffer posted on the receive queue, then HALT
; until the console's interrupt (IRQ 1) says the host filled it — and echoes
; each line it gets, after a "> " prompt, until a line starting with "q"
; (power off) or one starting with "r" (a reboot request: LHCALL_SHUTDOWN
; with LGUEST_SHUTDOWN_RESTART). A clock event every 4 s of virtual time wakes
; it meanwhile, as Linux's tick does, so it is never halted for good. It drives the device with the
; fewest steps (no checks: examples/lguest/virtio.asm checks them); output
; goes through emerg_wr. tests/console_input_test.ts types lines into it with
; the launcher's scripted console input (lib/boot/console_input.ts).

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

DRIVER_FEATURE_SELECT   equ 8
DRIVER_FEATURE          equ 12
DEVICE_STATUS           equ 20
QUEUE_SELECT            equ 22
QUEUE_SIZE              equ 24
QUEUE_ENABLE            equ 28
QUEUE_DESC              equ 32
QUEUE_AVAIL             equ 40
QUEUE_USED              equ 48
NOTIFY                  equ 56
ISR                     equ 58

QSIZE                   equ 8
DESC_F_WRITE            equ 2
AVAIL_IDX               equ 0x102
AVAIL_RING              equ 0x104
USED_IDX                equ 0x202
USED_RING               equ 0x204
TICK_NS                 equ 4000000000

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `echo: type lines; q ends\n`
        mov eax, 0x80000810             ; slot 1, BAR0
        mov dx, 0xcf8
        out dx, eax
        mov dx, 0xcfc
        in eax, dx
        and eax, ~0xf
        mov [bar0], eax
        LOAD_GATE 32, timer_irq, 0
        LOAD_GATE 33, console_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~3
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200

        mov ebx, [bar0]
        mov byte [ebx + DEVICE_STATUS], 0
        mov byte [ebx + DEVICE_STATUS], 1                ; ACKNOWLEDGE
        mov byte [ebx + DEVICE_STATUS], 3                ; | DRIVER
        mov dword [ebx + DRIVER_FEATURE_SELECT], 1
        mov dword [ebx + DRIVER_FEATURE], 1              ; VERSION_1
        mov dword [ebx + DRIVER_FEATURE_SELECT], 0
        mov dword [ebx + DRIVER_FEATURE], 0
        mov byte [ebx + DEVICE_STATUS], 11               ; | FEATURES_OK
        xor eax, eax
        mov esi, rxq
        call setup_queue
        mov eax, 1
        mov esi, txq
        call setup_queue
        mov byte [ebx + DEVICE_STATUS], 15               ; | DRIVER_OK

.prompt:
        PUTS "> "
        movzx eax, word [rxq + AVAIL_IDX]                ; post rxbuf (descriptor 0)
        mov ecx, eax
        and ecx, QSIZE - 1
        mov word [rxq + AVAIL_RING + ecx * 2], 0
        inc eax
        mov [rxq + AVAIL_IDX], ax
        mov ebx, [bar0]                                  ; (HCALL clobbers EBX)
        mov word [ebx + NOTIFY], 0
        HCALL LHCALL_SET_CLOCKEVENT, TICK_NS
.wait:  mov dword [lguest_data + LD_IRQ_ENABLED], 0
        movzx eax, word [rxq + USED_IDX]
        cmp eax, [seen]
        jne .got
        HCALL LHCALL_HALT                                ; wakes with interrupts on
        jmp .wait
.got:   mov dword [lguest_data + LD_IRQ_ENABLED], 0x200
        mov [seen], eax
        dec eax
        and eax, QSIZE - 1
        mov ecx, [rxq + USED_RING + eax * 8 + 4]         ; bytes written
        PUTS "got: "
        mov esi, rxbuf
        jecxz .eol
.echo:  lodsb
        call early_putc
        loop .echo
        cmp al, 10
        je .next
.eol:   call early_newline
.next:  cmp byte [rxbuf], 'r'
        je .reboot
        cmp byte [rxbuf], 'q'
        jne .prompt
        PUTS `bye\n`
        jmp finish
.reboot:
        HCALL LHCALL_SHUTDOWN, msg_restart, 2
.hang:  jmp .hang
msg_restart:    db "Restarting system", 0

; setup_queue: queue EAX with its rings at ESI; descriptor 0 is rxbuf, writable
setup_queue:
        mov [ebx + QUEUE_SELECT], ax
        mov word [ebx + QUEUE_SIZE], QSIZE
        mov dword [esi], rxbuf
        mov dword [esi + 8], 64
        mov word [esi + 12], DESC_F_WRITE
        mov [ebx + QUEUE_DESC], esi
        lea ecx, [esi + AVAIL_IDX - 2]
        mov [ebx + QUEUE_AVAIL], ecx
        lea ecx, [esi + USED_IDX - 2]
        mov [ebx + QUEUE_USED], ecx
        mov word [ebx + QUEUE_ENABLE], 1
        ret

; IRQ 0: the clock event, re-armed
timer_irq:
        push eax
        push ebx
        push ecx
        push edx
        inc dword [ticks]
        HCALL LHCALL_SET_CLOCKEVENT, TICK_NS
        pop edx
        pop ecx
        pop ebx
        pop eax
        jmp lguest_iret

; IRQ 1: the console; reading the ISR clears it
console_irq:
        push eax
        mov eax, [bar0]
        movzx eax, byte [eax + ISR]
        pop eax
        jmp lguest_iret

        align 4
bar0:           dd 0
seen:           dd 0
ticks:          dd 0
rxbuf:          times 64 db 0

        align 4096
rxq:            times 0x300 db 0
        align 4096
txq:            times 0x300 db 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
