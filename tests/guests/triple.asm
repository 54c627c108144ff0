; triple: a fault while delivering a double fault shuts the machine down.
;
; SDM Vol. 3A 6.15 (interrupt 8, "Exception Class: abort"): "If another
; contributory or page fault exception occurs while attempting to call the
; double-fault handler, the processor enters shutdown mode." Here gate 13
; (#GP) and gate 8 (#DF) are both not present: #GP -> #NP while delivering it
; -> #DF -> #NP while delivering that -> shutdown. lguest.ts returns
; Exit.Shutdown with the chain of faults in its message; QEMU (with
; -no-reboot) powers off. The guest reports `triple.armed` and nothing after.

%include "tests/guests/include/guest.inc"

main:
        GATE 13, exc_stub13, SEL_CODE0, 0x0e00
        GATE 8, exc_stub8, SEL_CODE0, 0x0e00
        mov word [SCRATCH], SEL_BEYOND
        REPORT "triple.armed", 1
        REPORT "triple.at", .fault
.fault: mov ds, [SCRATCH]
        REPORT "triple.survived", 1
        ret
