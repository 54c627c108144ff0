; output: elf
;
; virtio: a driver for the virtio console over the modern PCI transport, the
; way Linux's virtio_pci_modern and virtio_console drive it (§9 of the ABI
; notes), small enough to read in one sitting.
;
;  1. Discovery through PCI config mechanism 1 (ports 0xCF8/0xCFC, emulated
;     by the host at ring 1): the function in slot 1 is 1AF4:1043, BAR0 is
;     sized (write all ones, read back the mask) and restored, the interrupt
;     line is read, and the vendor capabilities are walked to find where the
;     common config, notify, ISR and device config live in BAR0.
;  2. The driver's status dance on BAR0, by plain MOVs to device memory (the
;     host maps the device window; the CPU's bus carries each access to the
;     device): reset, ACKNOWLEDGE, DRIVER, read the offered features (EMERG_
;     WRITE and VERSION_1), accept VERSION_1 only, FEATURES_OK (read back),
;     set up both queues (queue_select banks the queue registers), DRIVER_OK.
;  3. Transmit: a one-descriptor request, a two-descriptor chain, and one with
;     avail.flags NO_INTERRUPT. The host serves each inside the notify write,
;     so the buffer is already back in the used ring when the write retires;
;     the queue interrupt (IRQ 1, vector 33) arrives right after, and the
;     handler reads the ISR (which clears it).
;  4. Receive: one writable buffer is posted; whatever input the host holds
;     for the console is copied into it, and the guest prints it back.
;
;   deno run -A repl.ts --run 16 examples/lguest/virtio.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

; BAR0 registers (struct virtio_pci_common_cfg, then notify, ISR, device config)
DEVICE_FEATURE_SELECT   equ 0
DEVICE_FEATURE          equ 4
DRIVER_FEATURE_SELECT   equ 8
DRIVER_FEATURE          equ 12
NUM_QUEUES              equ 18
DEVICE_STATUS           equ 20
QUEUE_SELECT            equ 22
QUEUE_SIZE              equ 24
QUEUE_ENABLE            equ 28
QUEUE_DESC              equ 32
QUEUE_AVAIL             equ 40
QUEUE_USED              equ 48

S_ACKNOWLEDGE           equ 1
S_DRIVER                equ 2
S_DRIVER_OK             equ 4
S_FEATURES_OK           equ 8

QSIZE                   equ 8           ; the size this driver asks for
DESC_F_NEXT             equ 1
DESC_F_WRITE            equ 2

; vring layout for QSIZE entries: desc at +0, avail at +0x100, used at +0x200
AVAIL_FLAGS             equ 0x100
AVAIL_IDX               equ 0x102
AVAIL_RING              equ 0x104
USED_IDX                equ 0x202
USED_RING               equ 0x204

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `virtio: the console over the modern PCI transport\n`

        ; --- 1. discovery
        xor ebx, ebx
        call pci_read32
        cmp eax, 0x10431af4
        CHECK e, "slot 1 is a virtio console (1AF4:1043)"
        mov ebx, 0x10
        call pci_read32
        and eax, ~0xf
        mov [bar0], eax
        SHOW "BAR0: ", eax
        mov ebx, 0x10                   ; size BAR0: all ones, read back, restore
        mov ecx, 0xffffffff
        call pci_write32
        call pci_read32
        mov [bar_mask], eax
        mov ecx, [bar0]
        call pci_write32
        cmp dword [bar_mask], 0xffffff80
        CHECK e, "BAR0 sizes as 128 bytes"
        call pci_read32
        cmp eax, [bar0]
        CHECK e, "and reads back its address after the restore"
        mov ebx, 0x3c
        call pci_read32
        and eax, 0xff
        mov [irq_line], eax
        cmp eax, 1
        CHECK e, "interrupt line 1"
        ; walk the capability list: per virtio cfg_type, its offset in BAR0
        mov ebx, 0x34
        call pci_read32
        and eax, 0xff
.cap:   test eax, eax
        jz .capsdone
        mov ebx, eax
        call pci_read32                 ; vndr, next, len, cfg_type
        mov esi, eax
        add ebx, 8
        call pci_read32                 ; offset
        mov ecx, esi
        shr ecx, 24                     ; cfg_type
        cmp cl, 5
        ja .next
        mov [cap_offset + ecx * 4], eax
        inc dword [caps_found]
.next:  mov eax, esi
        shr eax, 8
        and eax, 0xff                   ; next
        jmp .cap
.capsdone:
        cmp dword [caps_found], 5
        CHECK e, "five virtio capabilities (common, notify, ISR, PCI_CFG, device)"
        cmp dword [cap_offset + 2 * 4], 56
        CHECK e, "notify at BAR0 offset 56"
        cmp dword [cap_offset + 3 * 4], 58
        CHECK e, "ISR at BAR0 offset 58"
        cmp dword [cap_offset + 4 * 4], 60
        CHECK e, "device config at BAR0 offset 60"

        ; the queue interrupt: vector 32 + line, unblocked, interrupts on
        LOAD_GATE 33, console_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~2
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200

        ; --- 2. the driver's status dance
        mov ebx, [bar0]
        mov byte [ebx + DEVICE_STATUS], 0
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov dword [ebx + DEVICE_FEATURE_SELECT], 0
        mov eax, [ebx + DEVICE_FEATURE]
        SHOW "features 0-31: ", eax
        test eax, 1 << 2
        CHECK nz, "EMERG_WRITE offered"
        mov dword [ebx + DEVICE_FEATURE_SELECT], 1
        mov eax, [ebx + DEVICE_FEATURE]
        SHOW "features 32-63: ", eax
        cmp eax, 1
        CHECK e, "VERSION_1 offered"
        mov dword [ebx + DRIVER_FEATURE_SELECT], 1
        mov dword [ebx + DRIVER_FEATURE], 1      ; accept VERSION_1
        mov dword [ebx + DRIVER_FEATURE_SELECT], 0
        mov dword [ebx + DRIVER_FEATURE], 0      ; and nothing else
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        movzx eax, byte [ebx + DEVICE_STATUS]
        cmp eax, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        CHECK e, "FEATURES_OK reads back"
        movzx eax, word [ebx + NUM_QUEUES]
        cmp eax, 2
        CHECK e, "two queues"
        mov eax, 0
        mov esi, rxq
        call setup_queue
        mov eax, 1
        mov esi, txq
        call setup_queue
        mov ebx, [bar0]
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
        movzx eax, byte [ebx + DEVICE_STATUS]
        cmp eax, 0xf
        CHECK e, "DRIVER_OK: the device is live"

        ; --- 3. transmit
        ; one descriptor
        mov dword [txq + 0], msg1
        mov dword [txq + 8], msg1_len
        mov word [txq + 12], 0
        mov word [txq + AVAIL_RING], 0
        mov word [txq + AVAIL_IDX], 1
        mov ebx, [bar0]
        mov word [ebx + 56], 1          ; notify queue 1
        cmp word [txq + USED_IDX], 1
        CHECK e, "the request is used when the notify write retires"
        cmp dword [txq + USED_RING], 0
        CHECK e, "used.ring[0].id is its head, descriptor 0"
        cmp dword [irqs], 1
        CHECK e, "one queue interrupt"
        cmp dword [isr_seen], 1
        CHECK e, "the handler read ISR bit 0"
        mov ebx, [bar0]
        movzx eax, byte [ebx + 58]
        cmp eax, 0
        CHECK e, "reading the ISR cleared it"
        ; a two-descriptor chain (descriptors 1 -> 2)
        mov dword [txq + 16], msg2a
        mov dword [txq + 24], msg2a_len
        mov word [txq + 28], DESC_F_NEXT
        mov word [txq + 30], 2
        mov dword [txq + 32], msg2b
        mov dword [txq + 40], msg2b_len
        mov word [txq + 44], 0
        mov word [txq + AVAIL_RING + 2], 1
        mov word [txq + AVAIL_IDX], 2
        mov word [ebx + 56], 1
        cmp word [txq + USED_IDX], 2
        CHECK e, "the chain is used"
        cmp dword [txq + USED_RING + 8], 1
        CHECK e, "used.ring[1].id is the chain's head, descriptor 1"
        cmp dword [irqs], 2
        CHECK e, "a second interrupt"
        ; NO_INTERRUPT: used, but no interrupt
        mov word [txq + AVAIL_FLAGS], 1
        mov word [txq + AVAIL_RING + 4], 0
        mov word [txq + AVAIL_IDX], 3
        mov word [ebx + 56], 1
        cmp word [txq + USED_IDX], 3
        CHECK e, "the third request is used"
        cmp dword [irqs], 2
        CHECK e, "with avail.flags NO_INTERRUPT, no interrupt"
        mov word [txq + AVAIL_FLAGS], 0

        ; --- 4. receive: one 64-byte writable buffer
        mov dword [rxq + 0], rxbuf
        mov dword [rxq + 8], 64
        mov word [rxq + 12], DESC_F_WRITE
        mov word [rxq + AVAIL_RING], 0
        mov word [rxq + AVAIL_IDX], 1
        mov word [ebx + 56], 0          ; notify queue 0
        movzx eax, word [rxq + USED_IDX]
        test eax, eax
        jz .noinput
        mov ecx, [rxq + USED_RING + 4]  ; bytes received
        SHOW "received bytes: ", ecx
        cmp ecx, 64
        CHECK be, "no more than the buffer holds"
        test ecx, ecx
        jz finish
        PUTS "received: "
        mov esi, rxbuf
.echo:  lodsb
        call early_putc
        loop .echo
        call early_newline
        cmp dword [irqs], 3
        CHECK e, "the receive interrupt"
        jmp finish
.noinput:
        PUTS `no input was waiting for the console\n`
        jmp finish

; setup_queue: queue EAX with its rings at ESI (QSIZE entries)
setup_queue:
        mov ebx, [bar0]
        mov [ebx + QUEUE_SELECT], ax
        movzx ecx, word [ebx + QUEUE_SIZE]
        cmp ecx, 256
        CHECK e, "queue_size offers 256"
        mov word [ebx + QUEUE_SIZE], QSIZE
        mov [ebx + QUEUE_DESC], esi
        mov dword [ebx + QUEUE_DESC + 4], 0
        lea ecx, [esi + AVAIL_FLAGS]
        mov [ebx + QUEUE_AVAIL], ecx
        mov dword [ebx + QUEUE_AVAIL + 4], 0
        lea ecx, [esi + USED_IDX - 2]
        mov [ebx + QUEUE_USED], ecx
        mov dword [ebx + QUEUE_USED + 4], 0
        mov word [ebx + QUEUE_ENABLE], 1
        movzx ecx, word [ebx + QUEUE_ENABLE]
        cmp ecx, 1
        CHECK e, "the queue is enabled"
        ret

; pci_read32: EAX = config register EBX of bus 0, slot 1, function 0
pci_read32:
        push edx
        mov eax, ebx
        and eax, 0xfc
        or eax, 0x80000800
        mov dx, 0xcf8
        out dx, eax
        mov dx, 0xcfc
        in eax, dx
        pop edx
        ret

; IRQ 1 (vector 33): read the ISR — one byte, which clears it — and count.
console_irq:
        push eax
        push ebx
        mov ebx, [bar0]
        movzx eax, byte [ebx + 58]
        mov [isr_seen], eax
        inc dword [irqs]
        pop ebx
        pop eax
        jmp lguest_iret

msg1:           db "virtio: hello through the transmit queue", 10
msg1_len        equ $ - msg1
msg2a:          db "virtio: a chain of "
msg2a_len       equ $ - msg2a
msg2b:          db "two descriptors", 10
msg2b_len       equ $ - msg2b

        align 4
bar0:           dd 0
bar_mask:       dd 0
irq_line:       dd 0
cap_offset:     times 6 dd -1
caps_found:     dd 0
irqs:           dd 0
isr_seen:       dd 0
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
