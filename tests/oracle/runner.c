/*
 * runner.c: the native half of the differential-testing oracle.
 *
 * Runs i386 instruction bytes on the host CPU, as a 32-bit Linux process, from
 * a given register/flag/memory/x87 state, and prints the state the CPU left
 * behind. The TypeScript generator (gen.ts) pipes cases in and stores what comes
 * out as fixtures; the emulator is then checked against those fixtures without
 * needing a compiler.
 *
 * How a case runs:
 *   - three fixed regions are mapped: LOW (0x1000..0xffff, reachable by 16-bit
 *     addressing), DATA (0x100000..0x10ffff, the stack lives here) and CODE
 *     (0x200000, one RWX page). LOW and DATA are filled with a deterministic
 *     xorshift32 pattern plus the case's overrides; CODE holds the case's bytes
 *     followed by int3 (0xCC), and the rest of the page is 0xCC too.
 *   - a small asm stub `frstor`s the case's 108-byte FNSAVE image, loads EFLAGS
 *     with popf, the eight general registers from absolute globals, and jumps to
 *     0x200000. ESP is whatever the case says.
 *   - the case ends in a signal: SIGTRAP from the trailing int3 (vector 3, the
 *     normal end) or SIGILL/SIGFPE/SIGSEGV/SIGBUS from a fault. The handler runs
 *     on an alternate stack, copies the registers, trap number, error code, CR2
 *     and the x87 state (which the kernel hands over in FNSAVE layout) out of the
 *     ucontext, and siglongjmp()s back to the reader loop.
 *   - a per-case interval timer (SIGALRM) bounds runaway code; such a case is
 *     reported with vector -1 and the generator drops it.
 *
 * Protocol (stdin, one case per line, hex without 0x):
 *   first line:  P <patternSeed>
 *   cases:       <id> <eax> <ecx> <edx> <ebx> <esp> <ebp> <esi> <edi> <eflags>
 *                <code> <mem> <fpu>
 *     mem = "-" or comma-separated addr:bytes overrides; fpu = "-" (FNINIT state)
 *     or 216 hex digits (a 108-byte FNSAVE image).
 * Output (stdout, one line per case):
 *   <id> <vec> <err> <cr2> <eip> <eax> .. <edi> <eflags> <memdiff> <fpu>
 *     vec is decimal (-1 = timeout); memdiff lists changed bytes as addr:bytes
 *     runs ("-" if none); fpu is the final 108-byte FNSAVE image.
 *
 * Build: gcc -m32 -O1 -no-pie -fno-pie (see build.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define LOW_BASE 0x00001000u
#define LOW_SIZE 0x0000f000u
#define DATA_BASE 0x00100000u
#define DATA_SIZE 0x00010000u
#define CODE_BASE 0x00200000u
#define CODE_SIZE 0x00001000u

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* State the asm stub loads. Absolute addresses: the stub uses no registers. */
uint32_t g_regs[8];
uint32_t g_eflags;
uint32_t g_entry = CODE_BASE;
unsigned char g_fpu[108] __attribute__((aligned(16)));

static sigjmp_buf g_jb;
static volatile sig_atomic_t g_in_case;

static struct {
  int vec;
  uint32_t err, cr2, eip, eflags;
  uint32_t regs[8];
  unsigned char fpu[108];
} g_res;

static unsigned char g_init_low[LOW_SIZE], g_init_data[DATA_SIZE], g_init_code[CODE_SIZE];
static unsigned char g_pat_low[LOW_SIZE], g_pat_data[DATA_SIZE];
static unsigned char g_fninit[108];

void enter_case(void) __attribute__((noreturn));
__asm__(
    ".text\n"
    ".globl enter_case\n"
    ".type enter_case,@function\n"
    "enter_case:\n"
    "  frstor g_fpu\n"
    "  pushl g_eflags\n"
    "  popfl\n"
    "  movl g_regs+0, %eax\n"
    "  movl g_regs+4, %ecx\n"
    "  movl g_regs+8, %edx\n"
    "  movl g_regs+12, %ebx\n"
    "  movl g_regs+20, %ebp\n"
    "  movl g_regs+24, %esi\n"
    "  movl g_regs+28, %edi\n"
    "  movl g_regs+16, %esp\n"
    "  jmp *g_entry\n");

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  (void)si;
  if (!g_in_case) {
    if (sig == SIGALRM) return; /* a late timer tick: harmless */
    static const char msg[] = "runner: fault outside a case (runner bug)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
  }
  g_in_case = 0;
  ucontext_t *uc = (ucontext_t *)ucv;
  mcontext_t *mc = &uc->uc_mcontext;
  if (sig == SIGALRM) {
    g_res.vec = -1;
  } else {
    g_res.vec = (int)mc->gregs[REG_TRAPNO];
  }
  g_res.err = mc->gregs[REG_ERR];
  g_res.cr2 = mc->cr2;
  g_res.eip = mc->gregs[REG_EIP];
  g_res.eflags = mc->gregs[REG_EFL];
  g_res.regs[0] = mc->gregs[REG_EAX];
  g_res.regs[1] = mc->gregs[REG_ECX];
  g_res.regs[2] = mc->gregs[REG_EDX];
  g_res.regs[3] = mc->gregs[REG_EBX];
  g_res.regs[4] = mc->gregs[REG_UESP];
  g_res.regs[5] = mc->gregs[REG_EBP];
  g_res.regs[6] = mc->gregs[REG_ESI];
  g_res.regs[7] = mc->gregs[REG_EDI];
  if (mc->fpregs)
    memcpy(g_res.fpu, mc->fpregs, 108);
  else
    memset(g_res.fpu, 0, 108);
  siglongjmp(g_jb, 1);
}

static void die(const char *what) {
  fprintf(stderr, "runner: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void map_region(uint32_t base, uint32_t size, int prot) {
  void *p = mmap((void *)base, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED || (uint32_t)p != base) die("mmap fixed region");
}

/* The data pattern: little-endian xorshift32 words, same as fixture.ts. */
static void fill_pattern(unsigned char *dst, uint32_t size, uint32_t *state) {
  uint32_t x = *state;
  for (uint32_t i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    dst[i] = x;
    dst[i + 1] = x >> 8;
    dst[i + 2] = x >> 16;
    dst[i + 3] = x >> 24;
  }
  *state = x;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode hex into out (at most max bytes); returns the byte count or -1. */
static int unhex(const char *s, size_t n, unsigned char *out, size_t max) {
  if (n % 2 || n / 2 > max) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
    if (h < 0 || l < 0) return -1;
    out[i] = (unsigned char)(h << 4 | l);
  }
  return (int)(n / 2);
}

/* Write one byte of initial memory at an absolute address inside a region. */
static int poke_init(uint32_t addr, unsigned char v) {
  if (addr >= LOW_BASE && addr < LOW_BASE + LOW_SIZE)
    g_init_low[addr - LOW_BASE] = v;
  else if (addr >= DATA_BASE && addr < DATA_BASE + DATA_SIZE)
    g_init_data[addr - DATA_BASE] = v;
  else
    return -1;
  return 0;
}

static void print_diff(const unsigned char *init, const unsigned char *now, uint32_t base, uint32_t size,
                       int *first) {
  uint32_t i = 0;
  while (i < size) {
    if (init[i] == now[i]) {
      i++;
      continue;
    }
    uint32_t j = i;
    while (j < size && init[j] != now[j]) j++;
    printf("%s%x:", *first ? "" : ",", base + i);
    for (uint32_t k = i; k < j; k++) printf("%02x", now[k]);
    *first = 0;
    i = j;
  }
}

int main(void) {
  stack_t ss;
  ss.ss_sp = malloc(1 << 16);
  ss.ss_size = 1 << 16;
  ss.ss_flags = 0;
  if (!ss.ss_sp || sigaltstack(&ss, NULL)) die("sigaltstack");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGTRAP, SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGALRM};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL)) die("sigaction");

  map_region(LOW_BASE, LOW_SIZE, PROT_READ | PROT_WRITE);
  map_region(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
  map_region(CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);

  /* The FNINIT image, used when a case gives none. */
  __asm__ volatile("fninit\n\tfnsave %0" : "=m"(g_fninit));

  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int have_pattern = 0;
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);

  while ((len = getline(&line, &cap, stdin)) > 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (len == 0) continue;
    if (line[0] == 'P') {
      uint32_t seed = (uint32_t)strtoul(line + 2, NULL, 16);
      if (seed == 0) seed = 1;
      fill_pattern(g_pat_data, DATA_SIZE, &seed);
      fill_pattern(g_pat_low, LOW_SIZE, &seed);
      have_pattern = 1;
      continue;
    }
    if (!have_pattern) {
      fprintf(stderr, "runner: case before the P line\n");
      return 2;
    }
    /* Tokenize. */
    char *tok[13];
    int nt = 0;
    for (char *p = strtok(line, " "); p && nt < 13; p = strtok(NULL, " ")) tok[nt++] = p;
    if (nt != 13) {
      fprintf(stderr, "runner: malformed case line (%d fields)\n", nt);
      return 2;
    }
    const char *id = tok[0];
    for (int r = 0; r < 8; r++) g_regs[r] = (uint32_t)strtoul(tok[1 + r], NULL, 16);
    g_eflags = (uint32_t)strtoul(tok[9], NULL, 16);

    memcpy(g_init_low, g_pat_low, LOW_SIZE);
    memcpy(g_init_data, g_pat_data, DATA_SIZE);
    memset(g_init_code, 0xcc, CODE_SIZE);
    int clen = unhex(tok[10], strlen(tok[10]), g_init_code, CODE_SIZE - 1);
    if (clen < 0) {
      fprintf(stderr, "runner: case %s: bad code\n", id);
      return 2;
    }
    if (strcmp(tok[11], "-") != 0) {
      for (char *ov = tok[11]; *ov;) {
        char *colon = strchr(ov, ':');
        if (!colon) {
          fprintf(stderr, "runner: case %s: bad mem override\n", id);
          return 2;
        }
        uint32_t addr = (uint32_t)strtoul(ov, NULL, 16);
        char *hex = colon + 1;
        char *end = strchr(hex, ',');
        size_t n = end ? (size_t)(end - hex) : strlen(hex);
        static unsigned char buf[LOW_SIZE + DATA_SIZE];
        int nb = unhex(hex, n, buf, sizeof buf);
        if (nb < 0) {
          fprintf(stderr, "runner: case %s: bad mem bytes\n", id);
          return 2;
        }
        for (int k = 0; k < nb; k++)
          if (poke_init(addr + (uint32_t)k, buf[k])) {
            fprintf(stderr, "runner: case %s: override outside the data regions\n", id);
            return 2;
          }
        ov = end ? end + 1 : hex + n;
      }
    }
    if (strcmp(tok[12], "-") == 0)
      memcpy(g_fpu, g_fninit, 108);
    else if (unhex(tok[12], strlen(tok[12]), g_fpu, 108) != 108) {
      fprintf(stderr, "runner: case %s: bad fpu image\n", id);
      return 2;
    }

    memcpy((void *)LOW_BASE, g_init_low, LOW_SIZE);
    memcpy((void *)DATA_BASE, g_init_data, DATA_SIZE);
    memcpy((void *)CODE_BASE, g_init_code, CODE_SIZE);
    __builtin___clear_cache((char *)CODE_BASE, (char *)CODE_BASE + CODE_SIZE);

    struct itimerval it = {{0, 0}, {0, 200000}};
    struct itimerval off = {{0, 0}, {0, 0}};
    memset(&g_res, 0, sizeof g_res);
    if (sigsetjmp(g_jb, 1) == 0) {
      setitimer(ITIMER_REAL, &it, NULL);
      g_in_case = 1;
      enter_case();
    }
    setitimer(ITIMER_REAL, &off, NULL);

    printf("%s %d %x %x %x", id, g_res.vec, g_res.err, g_res.cr2, g_res.eip);
    for (int r = 0; r < 8; r++) printf(" %x", g_res.regs[r]);
    printf(" %x ", g_res.eflags);
    int first = 1;
    print_diff(g_init_low, (unsigned char *)LOW_BASE, LOW_BASE, LOW_SIZE, &first);
    print_diff(g_init_data, (unsigned char *)DATA_BASE, DATA_BASE, DATA_SIZE, &first);
    print_diff(g_init_code, (unsigned char *)CODE_BASE, CODE_BASE, CODE_SIZE, &first);
    if (first) printf("-");
    printf(" ");
    for (int k = 0; k < 108; k++) printf("%02x", g_res.fpu[k]);
    printf("\n");
  }
  fflush(stdout);
  return 0;
}
