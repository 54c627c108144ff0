; privileged: what the outer rings may not do, and the system instructions.
;
; I/O: at CPL > IOPL every byte of an IN/OUT must be allowed by the TSS I/O
; bitmap, else #GP(0) (SDM Vol. 1 19.5.2); CLI/STI need CPL <= IOPL; HLT, MOV
; CRn, LGDT, INVLPG, RDMSR/WRMSR need CPL 0; POPF at CPL 3 leaves IF and IOPL
; alone. MSRs: unknown ones raise #GP(0); the SYSENTER MSRs round-trip.
; SYSENTER/SYSEXIT switch to flat segments derived from SYSENTER_CS (SDM Vol.
; 2B). RDTSC is the retired-instruction count on lguest.ts and faults at CPL > 0
; with CR4.TSD. CPUID leaves 0, 1 and 0x80000000 are reported for the test to
; compare with lib/x86/cpuid.ts.

%include "tests/guests/include/guest.inc"

MSR_SYSENTER_CS  equ 0x174
MSR_SYSENTER_ESP equ 0x175
MSR_SYSENTER_EIP equ 0x176

main:
; ---- I/O permission, CPL 3 and 1 with IOPL 0 -------------------------------------
        ATTEMPT3 "io_out_allowed", out 0x80, al
        ATTEMPT3 "io_in_allowed", in al, 0x80
        ATTEMPT3 "io_out_denied", out 0x81, al
        ATTEMPT3 "io_in_dword_partial", in eax, 0x80         ; 0x80 allowed, 0x81-0x83 not
        mov edx, 0x400
        ATTEMPT3 "io_beyond_map", in al, dx                  ; past the TSS limit: denied
        ATTEMPT1 "io_r1_denied", out 0x81, al
        ATTEMPT1 "io_r1_allowed", out 0x80, al
        ATTEMPT3 "cli_r3", cli
        ATTEMPT3 "sti_r3", sti
        ; IOPL 3: the bitmap is not consulted, CLI/STI are allowed
        mov dword [user_eflags], 0x00003002
        ATTEMPT3 "io_iopl3", out 0x81, al
        ATTEMPT3 "cli_iopl3", cli
        ATTEMPT3 "sti_iopl3", sti
        mov dword [user_eflags], 0x00000002
        ; POPF at CPL 3: IF and IOPL silently unchanged
        BEGIN3 "popf_r3"
        pushfd
        or dword [esp], EFL_IF | EFL_IOPL3
        popfd
        pushfd
        pop eax
        END 0
        REPORT "popf_r3.eflags", [uret_regs + R_EAX]

; ---- CPL 0 only ---------------------------------------------------------------------
        ATTEMPT3 "hlt_r3", hlt
        ATTEMPT1 "hlt_r1", hlt
        ATTEMPT3 "mov_cr0_r3", mov cr0, eax
        ATTEMPT3 "read_cr0_r3", mov eax, cr0
        ATTEMPT1 "mov_cr3_r1", mov cr3, eax
        ATTEMPT3 "lgdt_r3", lgdt [gdt_ptr]
        ATTEMPT3 "invlpg_r3", invlpg [0]
        ATTEMPT3 "rdmsr_r3", rdmsr
        ATTEMPT3 "wrmsr_r3", wrmsr

; ---- MSRs -----------------------------------------------------------------------------------
        mov ecx, 0x12345
        ATTEMPT "rdmsr_unknown", rdmsr
        ATTEMPT "wrmsr_unknown", wrmsr
        mov ecx, MSR_SYSENTER_CS
        mov eax, SEL_SYSENTER
        xor edx, edx
        wrmsr
        mov ecx, MSR_SYSENTER_ESP
        mov eax, SYSSTACK_TOP
        wrmsr
        mov ecx, MSR_SYSENTER_EIP
        mov eax, sysenter_entry
        wrmsr
        mov ecx, MSR_SYSENTER_CS
        mov edx, 0xffffffff
        rdmsr
        REPORT "msr.cs", eax
        REPORT "msr.cs_hi", edx
        mov ecx, MSR_SYSENTER_ESP
        rdmsr
        REPORT "msr.esp", eax
        mov ecx, MSR_SYSENTER_EIP
        rdmsr
        REPORT "msr.eip", eax

; ---- SYSENTER from ring 3, SYSEXIT back -------------------------------------------------------
        mov dword [user_eflags], 0x00000202                  ; IF=1: SYSENTER clears it
        BEGIN3 "sysenter"
sysenter_at:
        sysenter
sysexit_target:
        mov eax, cs
        mov ebx, ss
        mov ecx, esp
        END sysenter_at
        mov dword [user_eflags], 0x00000002
        REPORT "sysenter.cs", [sysent_cs]
        REPORT "sysenter.ss", [sysent_ss]
        REPORT "sysenter.esp", [sysent_esp]
        REPORT "sysenter.eflags", [sysent_efl]
        REPORT "sysexit.cs", [uret_regs + R_EAX]
        REPORT "sysexit.ss", [uret_regs + R_EBX]
        REPORT "sysexit.esp", [uret_regs + R_ECX]
        REPORT "sysexit.eip", [uret_eip]                     ; INT VEC_RET after the 3 MOVs
        REPORT "sysexit.target", sysexit_target + 6 + 2
        ATTEMPT3 "sysexit_r3", sysexit                       ; CPL != 0: #GP(0)
        mov ecx, MSR_SYSENTER_CS
        xor eax, eax
        xor edx, edx
        wrmsr
        ATTEMPT3 "sysenter_cs0", sysenter                    ; SYSENTER_CS null: #GP(0)
        ATTEMPT "sysexit_cs0", sysexit
        mov eax, SEL_SYSENTER
        wrmsr

; ---- RDTSC ------------------------------------------------------------------------------------
        rdtsc
        mov esi, eax
        nop
        nop
        nop
        rdtsc                                                ; 5 instructions after the first
        sub eax, esi
        REPORT "tsc.delta", eax
        ATTEMPT3 "rdtsc_r3", rdtsc
        mov eax, cr4
        or eax, CR4_TSD
        mov cr4, eax
        ATTEMPT3 "rdtsc_r3_tsd", rdtsc                       ; #GP(0)
        ATTEMPT1 "rdtsc_r1_tsd", rdtsc                       ; #GP(0)
        ATTEMPT "rdtsc_r0_tsd", rdtsc
        mov eax, cr4
        and eax, ~CR4_TSD
        mov cr4, eax

; ---- CPUID ------------------------------------------------------------------------------------
%macro LEAF 2
        mov eax, %2
        xor ecx, ecx
        cpuid
        REPORT %1, ".eax", eax
        REPORT %1, ".ebx", ebx
        REPORT %1, ".ecx", ecx
        REPORT %1, ".edx", edx
%endmacro
        LEAF "cpuid.0", 0
        LEAF "cpuid.1", 1
        LEAF "cpuid.80000000", 0x80000000
        ret

; SYSENTER lands here at CPL 0 (CS = SYSENTER_CS, SS = SYSENTER_CS + 8).
sysenter_entry:
        mov [ss:sysent_esp], esp
        mov eax, cs
        mov [ss:sysent_cs], eax
        mov eax, ss
        mov [ss:sysent_ss], eax
        pushfd
        pop eax
        mov [ss:sysent_efl], eax
        mov edx, sysexit_target                              ; SYSEXIT: EIP = EDX, ESP = ECX
        mov ecx, USTACK_TOP - 0x40
        sysexit

        align 4
sysent_esp:     dd 0
sysent_cs:      dd 0
sysent_ss:      dd 0
sysent_efl:     dd 0
