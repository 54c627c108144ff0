; output: elf
;
; timer: the host's clock event, HALT, and the guest's virtual interrupt flag.
;
; The guest installs a handler for vector 32 (IRQ 0, the timer), unblocks
; IRQ 0 (bit 0 of lguest_data.blocked_interrupts, as lguest_time_init does)
; and then, five times, arms a one-shot timer (LHCALL_SET_CLOCKEVENT, 1 ms)
; and halts (LHCALL_HALT) with irq_enabled = 0, as Linux's idle loop does.
; The host sleeps until the timer fires — in virtual time, it skips ahead —
; and wakes the guest with irq_enabled = 0x200, so the interrupt is delivered
; and the HALT returns with interrupts on. (The handler returns through
; lguest_iret, which copies the whole EFLAGS word of the frame into
; irq_enabled — so it reads 0x2xx, IF set, as on a 4.9 guest.)
;
; Then it shows the host honouring irq_enabled: with irq_enabled = 0, a timer
; that expires while the guest computes is not delivered; the host only sets
; lguest_data.irq_pending = 0x200. The guest sets irq_enabled = 0x200 and,
; seeing irq_pending, makes LHCALL_SEND_INTERRUPTS (as lg_irq_enable does):
; the interrupt arrives.
;
; Time is virtual and deterministic: the TSC counts retired instructions
; (1 GHz) plus the time skipped while halted, and lguest_data.time (written
; at every interrupt) follows it. The guest prints both, so two runs can be
; compared.
;
;   deno run -A repl.ts --run 16 examples/lguest/timer.elf

%define LOAD_ADDR 0x100000
%include "elf32.inc"
ELF_BEGIN
%include "lguest.inc"

HALTS           equ 5
DELTA_NS        equ 1000000             ; 1 ms

_start:
        mov esp, stack_top
        HCALL LHCALL_LGUEST_INIT, lguest_data
        PUTS `timer: clock events, HALT and the virtual interrupt flag\n`
        SHOW "tsc_khz from the host: ", [lguest_data + LD_TSC_KHZ]
        LOAD_GATE 32, timer_irq, 0
        and dword [lguest_data + LD_BLOCKED_INTERRUPTS], ~1

        ; --- sleep five times
        rdtsc
        mov [tsc_start], eax
        mov [tsc_start + 4], edx
        mov edi, HALTS
.sleep: HCALL LHCALL_SET_CLOCKEVENT, DELTA_NS
        mov dword [lguest_data + LD_IRQ_ENABLED], 0
        HCALL LHCALL_HALT
        ; the host woke us with interrupts on, and the handler ran
        mov eax, [lguest_data + LD_IRQ_ENABLED]
        mov [irq_after_halt], eax
        dec edi
        jnz .sleep
        rdtsc
        sub eax, [tsc_start]
        sbb edx, [tsc_start + 4]
        mov [tsc_slept], eax
        SHOW "interrupts after 5 halts: ", [ticks]
        cmp dword [ticks], HALTS
        CHECK e, "each HALT ended with one timer interrupt"
        SHOW "irq_enabled after the last HALT: ", [irq_after_halt]
        test dword [irq_after_halt], 0x200
        CHECK nz, "HALT returned with interrupts on (the host woke us with 0x200)"
        SHOW "TSC cycles across the halts: ", [tsc_slept]
        cmp dword [tsc_slept], HALTS * DELTA_NS
        CHECK ae, "the TSC moved on by at least 5 x 1 ms"
        cmp dword [tsc_slept], HALTS * DELTA_NS + 100000
        CHECK b, "and not by much more (the halts skipped to each deadline)"

        ; --- irq_enabled = 0: a timer that expires is held back
        mov dword [lguest_data + LD_IRQ_ENABLED], 0
        mov dword [lguest_data + LD_IRQ_PENDING], 0
        HCALL LHCALL_SET_CLOCKEVENT, 1000
        mov ecx, 5000                   ; spin well past the deadline
.spin:  loop .spin
        SHOW "interrupts with irq_enabled = 0: ", [ticks]
        cmp dword [ticks], HALTS
        CHECK e, "no interrupt was delivered while irq_enabled = 0"
        SHOW "irq_pending: ", [lguest_data + LD_IRQ_PENDING]
        cmp dword [lguest_data + LD_IRQ_PENDING], 0x200
        CHECK e, "the host set irq_pending = 0x200 instead"
        ; lg_irq_enable: interrupts on, and ask for the pending one
        mov dword [lguest_data + LD_IRQ_ENABLED], 0x200
        cmp dword [lguest_data + LD_IRQ_PENDING], 0
        je .none
        HCALL LHCALL_SEND_INTERRUPTS
.none:  SHOW "interrupts after SEND_INTERRUPTS: ", [ticks]
        cmp dword [ticks], HALTS + 1
        CHECK e, "LHCALL_SEND_INTERRUPTS got it delivered"

        ; --- virtual time
        rdtsc
        mov [tsc_end], eax
        mov [tsc_end + 4], edx
        PUTS "tsc: "
        mov eax, [tsc_end + 4]
        call early_puthex
        mov eax, [tsc_end]
        call early_puthex
        call early_newline
        PUTS "lguest_data.time: "
        mov eax, [lguest_data + LD_TIME]
        call early_putdec
        PUTS " s "
        mov eax, [lguest_data + LD_TIME + 4]
        call early_putdec
        PUTS ` ns\n`
        cmp dword [lguest_data + LD_TIME + 4], HALTS * DELTA_NS
        CHECK ae, "lguest_data.time has moved on by the time slept"
        jmp finish

; IRQ 0 on vector 32, through an interrupt gate: EIP, CS, EFLAGS.
timer_irq:
        inc dword [ticks]
        jmp lguest_iret

        align 4
ticks:          dd 0
irq_after_halt: dd 0
tsc_slept:      dd 0
tsc_start:      dd 0, 0
tsc_end:        dd 0, 0

        LGUEST_DATA lguest_noirq_iret
        align 16
        times 4096 db 0
stack_top:

ELF_END
