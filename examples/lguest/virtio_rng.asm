; output: elf
;
; virtio_rng: a driver for the virtio entropy device over the modern PCI
; transport (the driver core is examples/include/virtio.inc), the way
; Linux's virtio-rng (/dev/hwrng) uses it.
;
;  1. The function in slot 2 is 1AF4:1044; the status dance accepts VERSION_1
;     only (the device offers no other feature).
;  2. Two requests of 16 device-writable bytes each, kicked and waited for
;     (the interrupt, the ISR read); each comes back with all 16 bytes, the
;     two differ, and both are printed ("rng: " and four dwords in hex) for
;     the test to compare with the generator --rng=seed:N names.
;
;   deno run -A repl.ts --run --rng=seed:7 16 examples/lguest/virtio_rng.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"
VIRTIO_SLOT equ 2
%include "virtio.inc"

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `virtio_rng: the entropy device over the modern PCI transport\n`
        LOAD_GATE 32 + VIRTIO_SLOT, vio_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~(1 << VIRTIO_SLOT)
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200

        mov eax, 0x10441af4
        xor edx, edx
        call vio_start
        cmp dword [vio_features], 0
        CHECK e, "no features but VERSION_1 offered"

        mov edi, bytes1
        call rng_request
        mov edi, bytes2
        call rng_request
        mov esi, bytes1
        mov edi, bytes2
        mov ecx, 16
        repe cmpsb
        CHECK ne, "the two requests got different bytes"
        SHOW "interrupts: ", [vio_irqs]
        jmp finish

; rng_request: 16 bytes into EDI, checked and printed
rng_request:
        push edi
        mov eax, edi
        mov edx, 16
        mov ebx, VIO_DESC_F_WRITE
        xor ecx, ecx
        call vio_desc
        call vio_kick
        cmp eax, 16
        CHECK e, "used length: 16 bytes"
        pop edi
        PUTS "rng:"
        mov ecx, 4
.dword: mov al, ' '
        call early_putc
        mov eax, [edi]
        call early_puthex
        add edi, 4
        loop .dword
        jmp early_newline

        align 4
bytes1:         times 16 db 0
bytes2:         times 16 db 0

        align 4096
vio_queue:      times 0x300 db 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
