; output: elf
;
; net: a driver for the virtio network card that talks to the launcher's
; built-in responder (--net=responder: a gateway 10.0.2.2 on 10.0.2.0/24),
; the way Linux's virtio_net brings the card up, small enough to read at once.
;
;  1. Discovery through PCI config mechanism 1: the function in slot 2 is
;     1AF4:1041 (the only device after the console), BAR0 and its interrupt
;     line (2) are read.
;  2. The status dance: ACKNOWLEDGE, DRIVER, the features (MAC and
;     VERSION_1 are offered; both accepted), FEATURES_OK, the MAC read from
;     the device config, queues rx (0) and tx (1) set up, DRIVER_OK.
;  3. Two receive buffers are posted. An ARP request "who has 10.0.2.2?" is
;     transmitted behind its 12-byte virtio_net_hdr; the responder answers
;     inside the notify write, so the reply is in the receive ring when the
;     write retires, and the queue interrupt (IRQ 2, vector 34) comes.
;     The reply is checked: an ARP reply from 10.0.2.2, to our MAC.
;  4. An ICMP echo request (checksums computed here) goes to the gateway's
;     MAC; the echo reply is checked: from 10.0.2.2, type 0, the same
;     identifier, sequence and data, and a checksum that verifies.
;
;   deno run -A repl.ts --run --net=responder 16 examples/lguest/net.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

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
NOTIFY                  equ 56
ISR                     equ 58
DEVICE_CONFIG           equ 60

S_ACKNOWLEDGE           equ 1
S_DRIVER                equ 2
S_DRIVER_OK             equ 4
S_FEATURES_OK           equ 8

QSIZE                   equ 8
DESC_F_WRITE            equ 2
AVAIL_IDX               equ 0x102
AVAIL_RING              equ 0x104
USED_IDX                equ 0x202
USED_RING               equ 0x204

HDR                     equ 12          ; virtio_net_hdr_v1
RXBUF_SIZE              equ 256

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `net: a virtio network card and the responder at 10.0.2.2\n`

        ; --- 1. discovery
        xor ebx, ebx
        call pci_read32
        cmp eax, 0x10411af4
        CHECK e, "slot 2 is a virtio network card (1AF4:1041)"
        mov ebx, 0x10
        call pci_read32
        and eax, ~0xf
        mov [bar0], eax
        mov ebx, 0x3c
        call pci_read32
        and eax, 0xff
        cmp eax, 2
        CHECK e, "interrupt line 2"

        LOAD_GATE 34, net_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~4
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200

        ; --- 2. the status dance
        mov ebx, [bar0]
        mov byte [ebx + DEVICE_STATUS], 0
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER
        mov dword [ebx + DEVICE_FEATURE_SELECT], 0
        mov eax, [ebx + DEVICE_FEATURE]
        SHOW "features 0-31: ", eax
        test eax, 1 << 5
        CHECK nz, "MAC offered"
        test eax, 0x3b83
        CHECK z, "no checksum or segmentation offloads offered"
        mov dword [ebx + DEVICE_FEATURE_SELECT], 1
        mov eax, [ebx + DEVICE_FEATURE]
        cmp eax, 1
        CHECK e, "VERSION_1 offered"
        mov dword [ebx + DRIVER_FEATURE_SELECT], 1
        mov dword [ebx + DRIVER_FEATURE], 1
        mov dword [ebx + DRIVER_FEATURE_SELECT], 0
        mov dword [ebx + DRIVER_FEATURE], 1 << 5
        mov byte [ebx + DEVICE_STATUS], S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        movzx eax, byte [ebx + DEVICE_STATUS]
        cmp eax, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
        CHECK e, "FEATURES_OK reads back"
        mov eax, [ebx + DEVICE_CONFIG]          ; the MAC, byte by byte as Linux reads it
        mov ecx, 0
.mac:   mov al, [ebx + DEVICE_CONFIG + ecx]
        mov [mac + ecx], al
        inc ecx
        cmp ecx, 6
        jb .mac
        cmp dword [mac], 0x12005452
        CHECK e, "the MAC in the device config: 52:54:00:12:34:56"
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
        mov byte [ebx + DEVICE_STATUS], 0xf
        movzx eax, byte [ebx + DEVICE_STATUS]
        cmp eax, 0xf
        CHECK e, "DRIVER_OK: the card is live"

        ; --- 3. two receive buffers, then ARP
        mov dword [rxq + 0], rxbuf0
        mov dword [rxq + 8], RXBUF_SIZE
        mov word [rxq + 12], DESC_F_WRITE
        mov dword [rxq + 16], rxbuf1
        mov dword [rxq + 24], RXBUF_SIZE
        mov word [rxq + 28], DESC_F_WRITE
        mov word [rxq + AVAIL_RING], 0
        mov word [rxq + AVAIL_RING + 2], 1
        mov word [rxq + AVAIL_IDX], 2
        mov word [ebx + NOTIFY], 0

        mov esi, mac                            ; our MAC into the request
        lea edi, [arp + HDR + 6]
        movsd
        movsw
        mov esi, mac
        lea edi, [arp + HDR + 22]
        movsd
        movsw
        mov dword [txq + 0], arp
        mov dword [txq + 8], arp_len
        mov word [txq + 12], 0
        mov word [txq + AVAIL_RING], 0
        mov word [txq + AVAIL_IDX], 1
        mov word [ebx + NOTIFY], 1
        cmp word [txq + USED_IDX], 1
        CHECK e, "the ARP request is used when the notify write retires"
        cmp word [rxq + USED_IDX], 1
        CHECK e, "and the reply is already in the receive ring"
        cmp dword [rxq + USED_RING], 0
        CHECK e, "in the first buffer"
        mov eax, [rxq + USED_RING + 4]
        SHOW "reply bytes: ", eax
        cmp eax, HDR + 42
        CHECK e, "header + 42 bytes of ARP"
        cmp byte [rxbuf0 + 10], 1
        CHECK e, "num_buffers is 1"
        cmp dword [irqs], 0
        CHECK a, "the queue interrupt came"
        cmp word [rxbuf0 + HDR + 12], 0x0608
        CHECK e, "an ARP frame"
        cmp word [rxbuf0 + HDR + 20], 0x0200
        CHECK e, "an ARP reply"
        cmp dword [rxbuf0 + HDR + 28], 0x0202000a
        CHECK e, "from 10.0.2.2"
        mov esi, mac
        lea edi, [rxbuf0 + HDR]
        mov ecx, 6
        repe cmpsb
        CHECK e, "to our MAC"
        mov eax, [rxbuf0 + HDR + 22]
        SHOW "gateway MAC (first 4 bytes): ", eax

        ; --- 4. ping the gateway at its MAC
        mov esi, rxbuf0 + HDR + 22
        lea edi, [echo + HDR]
        movsd
        movsw
        mov esi, mac
        movsd
        movsw
        mov esi, echo + HDR + 14                ; IP header checksum
        mov ecx, 20
        call cksum
        mov [echo + HDR + 14 + 10], ax
        mov esi, echo + HDR + 34                ; ICMP checksum
        mov ecx, echo_icmp_len
        call cksum
        mov [echo + HDR + 34 + 2], ax
        mov eax, [irqs]
        mov [irqs_before], eax
        mov dword [txq + 16], echo
        mov dword [txq + 24], echo_len
        mov word [txq + 28], 0
        mov word [txq + AVAIL_RING + 2], 1
        mov word [txq + AVAIL_IDX], 2
        mov word [ebx + NOTIFY], 1
        cmp word [txq + USED_IDX], 2
        CHECK e, "the echo request is used"
        cmp word [rxq + USED_IDX], 2
        CHECK e, "the echo reply is in the receive ring"
        cmp dword [rxq + USED_RING + 8], 1
        CHECK e, "in the second buffer"
        mov eax, [rxq + USED_RING + 12]
        cmp eax, HDR + 14 + 20 + echo_icmp_len
        CHECK e, "header + the whole IP packet"
        mov eax, [irqs]
        cmp eax, [irqs_before]
        CHECK a, "another interrupt"
        cmp dword [rxbuf1 + HDR + 26], 0x0202000a
        CHECK e, "from 10.0.2.2"
        cmp dword [rxbuf1 + HDR + 30], 0x0f02000a
        CHECK e, "to 10.0.2.15"
        mov esi, rxbuf1 + HDR + 14
        mov ecx, 20
        call cksum
        cmp ax, 0
        CHECK e, "the IP header checksum verifies"
        cmp byte [rxbuf1 + HDR + 34], 0
        CHECK e, "an ICMP echo reply"
        mov esi, rxbuf1 + HDR + 34
        mov ecx, echo_icmp_len
        call cksum
        cmp ax, 0
        CHECK e, "the ICMP checksum verifies"
        mov esi, echo + HDR + 34 + 4
        mov edi, rxbuf1 + HDR + 34 + 4
        mov ecx, echo_icmp_len - 4
        repe cmpsb
        CHECK e, "the same identifier, sequence and data"
        PUTS `net: the gateway answered ARP and ping\n`
        jmp finish

; setup_queue: queue EAX with its rings at ESI (QSIZE entries)
setup_queue:
        mov ebx, [bar0]
        mov [ebx + QUEUE_SELECT], ax
        mov word [ebx + QUEUE_SIZE], QSIZE
        mov [ebx + QUEUE_DESC], esi
        mov dword [ebx + QUEUE_DESC + 4], 0
        lea ecx, [esi + 0x100]
        mov [ebx + QUEUE_AVAIL], ecx
        mov dword [ebx + QUEUE_AVAIL + 4], 0
        lea ecx, [esi + 0x200]
        mov [ebx + QUEUE_USED], ecx
        mov dword [ebx + QUEUE_USED + 4], 0
        mov word [ebx + QUEUE_ENABLE], 1
        ret

; cksum: AX = the Internet checksum of ECX bytes (even) at ESI, in memory order
; (a one's-complement sum is the same in either byte order)
cksum:
        xor edx, edx
.w:     movzx eax, word [esi]
        add edx, eax
        add esi, 2
        sub ecx, 2
        ja .w
.fold:  mov eax, edx
        shr eax, 16
        and edx, 0xffff
        add edx, eax
        cmp edx, 0xffff
        ja .fold
        mov eax, edx
        not ax
        ret

; pci_read32: EAX = config register EBX of bus 0, slot 2, function 0
pci_read32:
        push edx
        mov eax, ebx
        and eax, 0xfc
        or eax, 0x80001000
        mov dx, 0xcf8
        out dx, eax
        mov dx, 0xcfc
        in eax, dx
        pop edx
        ret

; IRQ 2 (vector 34): read the ISR (clears it) and count.
net_irq:
        push eax
        push ebx
        mov ebx, [bar0]
        movzx eax, byte [ebx + ISR]
        inc dword [irqs]
        pop ebx
        pop eax
        jmp lguest_iret

; an ARP request, "who has 10.0.2.2? tell 10.0.2.15", behind a zero header
arp:    times HDR db 0
        db 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x08, 0x06
        db 0, 1, 0x08, 0, 6, 4, 0, 1
        db 0, 0, 0, 0, 0, 0, 10, 0, 2, 15
        db 0, 0, 0, 0, 0, 0, 10, 0, 2, 2
arp_len equ $ - arp

; an ICMP echo request to 10.0.2.2 (MACs and checksums filled in above)
echo:   times HDR db 0
        times 12 db 0
        db 0x08, 0x00
        db 0x45, 0, 0, 20 + echo_icmp_len, 0, 1, 0x40, 0, 64, 1, 0, 0
        db 10, 0, 2, 15, 10, 0, 2, 2
echo_icmp:
        db 8, 0, 0, 0, 0x4c, 0x47, 0, 1
        db "lguest.ts ping!!"
echo_icmp_len equ $ - echo_icmp
echo_len equ $ - echo

        align 4
bar0:           dd 0
irqs:           dd 0
irqs_before:    dd 0
mac:            times 8 db 0
rxbuf0:         times RXBUF_SIZE db 0
rxbuf1:         times RXBUF_SIZE db 0

        align 4096
rxq:            times 0x300 db 0
        align 4096
txq:            times 0x300 db 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
