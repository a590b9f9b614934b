/*
 * Which bytes of struct fo_connect_ctx a policy can read, found once at load, so that a call
 * fills only what its policy looks at: the socket's type and protocol cost a getsockopt()
 * system call, which most policies never read.
 *
 * A forward data-flow pass over the program section, one state per basic block: each register
 * and each 8-byte stack slot is "not a pointer we follow", "the context + [lo, hi]" or "the
 * stack + k" (r10 + k, or maybe that). Loads through the context mark the bytes they can reach;
 * the context pointer may be copied, moved by constants, and spilled to and reloaded from the
 * stack. Anything the pass cannot follow exactly answers "every byte": the context pointer
 * stored outside the stack, handed to a helper (in an argument register it reads: the
 * built-in helpers' own counts) or a subprogram, moved by a variable amount,
 * cut to 32 bits, partly overwritten or partly read; a stack pointer stored in memory, or
 * handed to code that may write through it while a context pointer is (or later gets)
 * spilled; an unknown opcode; legacy packet loads; a jump out of the section. Subprograms never
 * receive the pointer, so only the entry section is walked. The answer over-approximates:
 * never a byte too few (tests/firmware_hooks/test_ctx_reads.py checks it differentially).
 */
#include "fohook_reads.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "fovm.h"

#define NREGS 11
#define NSLOTS 64       /* 8-byte slots of the 512-byte stack below r10 */
#define MAX_K 4096      /* context offsets beyond this are not followed */
#define MAX_INSNS 8192  /* longer programs: every byte (a state per block: bounded memory) */

enum kind { NOT, CTX, FP, MFP, BAD }; /* not a pointer we follow; the context + [lo, hi];
                                         r10 + lo; maybe r10 + lo (or not a pointer); one of
                                         two different pointers (paths joined): any use of
                                         it gives up, but a dead register may hold it */
struct val {
    uint8_t kind;
    int16_t lo, hi;
};

struct insn {
    uint8_t code;
    uint8_t regs; /* dst: low 4 bits, src: high 4 bits */
    int16_t off;
    int32_t imm;
};

struct state {
    struct val r[NREGS];
    struct val slot[NSLOTS]; /* spilled registers, slot i at r10 - 8 * (i + 1) */
    uint8_t escaped;         /* a stack pointer went where writes are not followed */
};

struct pass {
    const struct insn *in;
    size_t n;
    int32_t *leader;  /* per pc: its index among block leaders (jump targets, the pc after a
                         conditional jump, 0), or -1 */
    struct state *at; /* per leader: the state on entry */
    uint8_t *seen;    /* per leader: at[] holds a state */
    uint8_t *queued;  /* per leader: to (re)visit, taken in program order */
    size_t nqueued;
    uint64_t reads;
};

static const struct val not_ptr = {NOT, 0, 0};

static void mark(struct pass *p, int64_t from, int64_t to)
{
    for (int64_t b = from < 0 ? 0 : from; b < to && b < 64; b++)
        p->reads |= (uint64_t)1 << b;
}

/* Join b into *a: 1 when *a changed, -1 when the pass must give up. */
static int join(struct val *a, struct val b)
{
    static const struct val bad = {BAD, 0, 0};

    if (b.kind == NOT && a->kind == FP) { /* r10 + lo on one path only: a write through it */
        a->kind = MFP;                       /* must not replace what the slot held */
        return 1;
    }
    if (b.kind == NOT || a->kind == BAD || (a->kind == b.kind && a->lo == b.lo && a->hi == b.hi))
        return 0;
    if (a->kind == NOT) {
        *a = b;
        if (a->kind == FP)
            a->kind = MFP;
        return 1;
    }
    if (a->kind == CTX && b.kind == CTX) {
        int16_t lo = a->lo < b.lo ? a->lo : b.lo, hi = a->hi > b.hi ? a->hi : b.hi;
        int changed = lo != a->lo || hi != a->hi;
        a->lo = lo;
        a->hi = hi;
        return changed;
    }
    if ((a->kind == FP || a->kind == MFP) && (b.kind == FP || b.kind == MFP) && a->lo == b.lo) {
        int changed = a->kind != MFP;
        a->kind = MFP;
        return changed;
    }
    *a = bad; /* two different pointers: given up on where it is used */
    return 1;
}

/* Join `s` into the state at leader `pc`; -1 when the pass must give up. */
static int flow(struct pass *p, int64_t pc, const struct state *s)
{
    if (pc < 0 || (size_t)pc >= p->n || p->leader[pc] < 0)
        return -1;
    int32_t l = p->leader[pc];
    int changed = 0;
    if (!p->seen[l]) {
        p->at[l] = *s;
        p->seen[l] = 1;
        changed = 1;
    } else if (memcmp(&p->at[l], s, sizeof *s) != 0) {
        struct state *a = &p->at[l];
        for (int i = 0; i < NREGS + NSLOTS; i++) {
            int rc = join(i < NREGS ? &a->r[i] : &a->slot[i - NREGS],
                          i < NREGS ? s->r[i] : s->slot[i - NREGS]);
            if (rc < 0)
                return -1;
            changed |= rc;
        }
        changed |= s->escaped && !a->escaped;
        a->escaped |= s->escaped;
    }
    if (changed && !p->queued[l]) {
        p->queued[l] = 1;
        p->nqueued++;
    }
    return 0;
}

static int size_of(uint8_t code)
{
    static const int sizes[4] = {4, 2, 1, 8};
    return sizes[(code >> 3) & 3];
}

static int maybe_ctx(struct val v)
{
    return v.kind == CTX || v.kind == BAD;
}

static int holds_ctx(const struct state *s)
{
    for (int i = 0; i < NSLOTS; i++)
        if (maybe_ctx(s->slot[i]))
            return 1;
    return 0;
}

/* The stack slots [r10 + at, r10 + at + size) touches: *first and *last; 0 when none. */
static int slots(int64_t at, int size, int *first, int *last)
{
    if (at + size <= -8 * NSLOTS || at >= 0)
        return 0;
    int64_t lo = at < -8 * NSLOTS ? -8 * NSLOTS : at, hi = at + size > 0 ? 0 : at + size;
    *first = (int)((-lo - 1) / 8);
    *last = (int)((-(hi - 1) - 1) / 8);
    return 1;
}

/* 64-bit arithmetic: a pointer moved by a constant stays followed. */
static int alu64(struct state *s, const struct insn *i, int dst, int src)
{
    uint8_t op = i->code & 0xf0;
    int x = i->code & 0x08;
    if (op == 0xb0 && (!x || i->off == 0)) { /* mov */
        s->r[dst] = x ? s->r[src] : not_ptr;
        return 0;
    }
    if (x && s->r[src].kind != NOT)
        return -1; /* a pointer as an operand */
    if (s->r[dst].kind == NOT)
        return 0; /* an integer stays one */
    if (x || (op != 0x00 && op != 0x10))
        return -1; /* a pointer moved by a variable, or not added to */
    int64_t d = op == 0x00 ? (int64_t)i->imm : -(int64_t)i->imm;
    int64_t lo = s->r[dst].lo + d, hi = s->r[dst].hi + d;
    if (lo < -MAX_K || hi > MAX_K)
        return -1;
    s->r[dst].lo = (int16_t)lo;
    s->r[dst].hi = (int16_t)hi;
    return 0;
}

/* A write of `size` bytes through base register `b` + off, of value v (NOT for immediates
 * and atomics). */
static int store(struct state *s, struct val b, int16_t off, int size, struct val v)
{
    int first, last;
    if (b.kind == BAD || v.kind == BAD)
        return -1;
    if (b.kind == CTX || b.kind == NOT) /* the context, a map value: never a ctx pointer */
        return v.kind == NOT ? 0 : -1;
    if (v.kind == FP || v.kind == MFP)
        return -1; /* a stack pointer in memory: its writes would not be followed */
    if (!slots((int64_t)b.lo + off, size, &first, &last))
        return v.kind == NOT ? 0 : -1;
    int whole = size == 8 && ((int64_t)b.lo + off) % 8 == 0;
    if (v.kind == CTX && (!whole || b.kind != FP || s->escaped))
        return -1;
    for (int i = first; i >= last; i--) {
        if (maybe_ctx(s->slot[i]) && !whole)
            return -1; /* part of a spilled context pointer overwritten */
        if (b.kind == FP)
            s->slot[i] = v;
        else if (join(&s->slot[i], v) < 0) /* maybe this slot: keep what it held too */
            return -1;
    }
    return 0;
}

static int load(struct pass *p, struct state *s, const struct insn *i, int dst, int src)
{
    struct val b = s->r[src];
    int size = size_of(i->code), first, last;
    if (b.kind == BAD)
        return -1;
    if (b.kind == CTX)
        mark(p, (int64_t)b.lo + i->off, (int64_t)b.hi + i->off + size);
    struct val v = not_ptr;
    if ((b.kind == FP || b.kind == MFP) && slots((int64_t)b.lo + i->off, size, &first, &last)) {
        int whole = size == 8 && ((int64_t)b.lo + i->off) % 8 == 0 && (i->code & 0xe0) == 0x60;
        for (int j = first; j >= last; j--)
            if (maybe_ctx(s->slot[j]) && !whole)
                return -1; /* part of a context pointer */
        if (whole)
            v = s->slot[first];
        if (b.kind == MFP && join(&v, not_ptr) < 0)
            return -1;
    }
    s->r[dst] = v;
    return 0;
}

static int memory(struct pass *p, struct state *s, const struct insn *i, int dst, int src)
{
    uint8_t cls = i->code & 7, mode = i->code & 0xe0;
    int size = size_of(i->code);
    if (cls == 1) /* ldx */
        return mode == 0x60 || mode == 0x80 ? load(p, s, i, dst, src) : -1;
    if (mode == 0x60) /* st, stx */
        return store(s, s->r[dst], i->off, size, cls == 3 ? s->r[src] : not_ptr);
    if (cls != 3 || mode != 0xc0 || s->r[src].kind != NOT)
        return -1;
    struct val b = s->r[dst]; /* atomic read-modify-write */
    if (b.kind == CTX)
        mark(p, (int64_t)b.lo + i->off, (int64_t)b.hi + i->off + size);
    if (store(s, b, i->off, size, not_ptr) != 0)
        return -1;
    if (i->imm == 0xf1) /* cmpxchg loads into r0 */
        s->r[0] = not_ptr;
    else if (i->imm & 0x01) /* fetch and xchg load into src */
        s->r[src] = not_ptr;
    return 0;
}

/* How many argument registers (r1...) a call reads: the built-in helpers' own counts (a
 * register past them is only left over from earlier code), 5 for anything else. */
static int call_args(const struct insn *i)
{
    if ((i->regs >> 4) != 0)
        return 5; /* a subprogram */
    switch (i->imm) {
    case 1: /* map_lookup_elem(map, key) */
    case 3: /* map_delete_elem(map, key) */
        return 2;
    case 2: /* map_update_elem(map, key, value, flags) */
        return 4;
    case 5: /* ktime_get_ns() */
    case 7: /* get_prandom_u32() */
        return 0;
    default:
        return 5;
    }
}

/* helper or subprogram: never hand it the context; a stack pointer given to anything but
 * the built-in helpers that only read their arguments may be written through. */
static int call(struct state *s, const struct insn *i)
{
    int reads_only = (i->regs >> 4) == 0 && i->imm >= 1 && i->imm <= 7 && i->imm != 4;
    for (int r = 1; r <= call_args(i); r++) {
        if (maybe_ctx(s->r[r]))
            return -1;
        if ((s->r[r].kind == FP || s->r[r].kind == MFP) && !reads_only) {
            if (holds_ctx(s))
                return -1;
            s->escaped = 1;
        }
    }
    for (int r = 0; r <= 5; r++)
        s->r[r] = not_ptr;
    return 0;
}

/* One instruction's effect on `s`; its successors in next[0..*nnext). -1 to give up. */
static int transfer(struct pass *p, struct state *s, size_t pc, int64_t next[2], int *nnext)
{
    const struct insn *i = &p->in[pc];
    int dst = i->regs & 0xf, src = i->regs >> 4;
    uint8_t cls = i->code & 7, op = i->code & 0xf0;
    *nnext = 1;
    next[0] = (int64_t)pc + 1;
    if (dst >= NREGS || src >= NREGS || (dst == 10 && cls != 2 && cls != 3))
        return -1;
    switch (cls) {
    case 0: /* ld: only lddw (two slots) */
        if (i->code != 0x18)
            return -1;
        s->r[dst] = not_ptr;
        next[0] = (int64_t)pc + 2;
        return 0;
    case 1:
    case 2:
    case 3:
        return memory(p, s, i, dst, src);
    case 4: /* 32-bit arithmetic: a pointer cut to 32 bits is not followed */
        return s->r[dst].kind != NOT || ((i->code & 0x08) && s->r[src].kind != NOT) ? -1 : 0;
    case 7:
        return alu64(s, i, dst, src);
    default: /* jumps */
        break;
    }
    if (op == 0x90 && cls == 5) { /* exit */
        *nnext = 0;
        return 0;
    }
    if (op == 0x80 && cls == 5)
        return call(s, i);
    if (op == 0x00) { /* ja (the 32-bit class's gotol takes imm) */
        next[0] = (int64_t)pc + 1 + (cls == 5 ? i->off : i->imm);
        return 0;
    }
    if (op > 0xd0 || op == 0x80 || op == 0x90)
        return -1;
    next[1] = (int64_t)pc + 1 + i->off;
    *nnext = 2;
    return 0;
}

/* Mark the leaders: 0, jump targets, the instruction after a conditional jump. */
static void find_leaders(struct pass *p, size_t *count)
{
    size_t n = p->n;
    for (size_t pc = 0; pc < n; pc++)
        p->leader[pc] = -1;
    p->leader[0] = 0;
    for (size_t pc = 0; pc < n; pc++) {
        const struct insn *i = &p->in[pc];
        uint8_t cls = i->code & 7, op = i->code & 0xf0;
        if (i->code == 0x18) {
            pc++;
            continue;
        }
        if ((cls != 5 && cls != 6) || op == 0x80 || op == 0x90)
            continue;
        int64_t to = (int64_t)pc + 1 + (op == 0x00 && cls == 6 ? i->imm : i->off);
        if (to >= 0 && (size_t)to < n)
            p->leader[to] = 0;
        if (op != 0x00 && pc + 1 < n)
            p->leader[pc + 1] = 0;
    }
    *count = 0;
    for (size_t pc = 0; pc < n; pc++)
        if (p->leader[pc] == 0)
            p->leader[pc] = (int32_t)(*count)++;
}

/* Run the block starting at leader `pc` up to the next leader, jump or exit. */
static int run_block(struct pass *p, size_t pc)
{
    struct state s = p->at[p->leader[pc]];
    for (;;) {
        int64_t next[2];
        int nnext;
        if (transfer(p, &s, pc, next, &nnext) != 0)
            return -1;
        if (nnext == 0)
            return 0;
        if (nnext == 2)
            return flow(p, next[0], &s) != 0 ? -1 : flow(p, next[1], &s);
        if (next[0] < 0 || (size_t)next[0] >= p->n)
            return -1;
        if (p->leader[next[0]] >= 0 || next[0] != (int64_t)pc + 1 + (p->in[pc].code == 0x18))
            return flow(p, next[0], &s);
        pc = (size_t)next[0];
    }
}

uint64_t fohook_ctx_reads_insns(const void *insns, size_t n)
{
    if (n == 0 || n > MAX_INSNS)
        return FOHOOK_CTX_ALL;
    struct pass p = {0};
    size_t nleaders = 0;
    p.in = insns;
    p.n = n;
    p.leader = malloc(n * sizeof *p.leader);
    if (p.leader != NULL)
        find_leaders(&p, &nleaders);
    p.at = malloc((nleaders + 1) * sizeof *p.at);
    p.seen = calloc(nleaders + 1, 1);
    p.queued = calloc(nleaders + 1, 1);
    int rc = p.leader && p.at && p.seen && p.queued ? 0 : -1;
    struct state entry;
    memset(&entry, 0, sizeof entry);
    entry.r[1].kind = CTX;
    entry.r[10].kind = FP;
    if (rc == 0)
        rc = flow(&p, 0, &entry);
    /* sweeps in program order: forward edges settle within a sweep, each loop costs one more */
    while (rc == 0 && p.nqueued > 0)
        for (size_t pc = 0; rc == 0 && pc < n; pc++)
            if (p.leader[pc] >= 0 && p.queued[p.leader[pc]]) {
                p.queued[p.leader[pc]] = 0;
                p.nqueued--;
                rc = run_block(&p, pc);
            }
    free(p.leader);
    free(p.at);
    free(p.seen);
    free(p.queued);
    return rc == 0 ? p.reads : FOHOOK_CTX_ALL;
}

/* The bytes of the program section the VM loads (its rule: the named one, else the first
 * executable PROGBITS section other than .text). */
static const void *section_bytes(const void *elf, size_t len, const char *want, size_t *size)
{
    const Elf64_Ehdr *eh = elf;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff > len || eh->e_shnum > (len - eh->e_shoff) / sizeof(Elf64_Shdr) ||
        eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)elf + eh->e_shoff);
    const Elf64_Shdr *names = &sh[eh->e_shstrndx];
    if (names->sh_offset > len || names->sh_size > len - names->sh_offset)
        return NULL;
    const char *strtab = (const char *)elf + names->sh_offset;
    for (size_t i = 0; i < eh->e_shnum; i++) {
        const Elf64_Shdr *s = &sh[i];
        if (s->sh_name >= names->sh_size ||
            memchr(strtab + s->sh_name, '\0', names->sh_size - s->sh_name) == NULL)
            return NULL;
        const char *name = strtab + s->sh_name;
        if (s->sh_type != SHT_PROGBITS || !(s->sh_flags & SHF_EXECINSTR) || s->sh_size < 8 ||
            strcmp(name, ".text") == 0 || strcmp(name, want) != 0)
            continue;
        if (s->sh_offset > len || s->sh_size > len - s->sh_offset || s->sh_offset % 8 != 0)
            return NULL;
        *size = s->sh_size;
        return (const char *)elf + s->sh_offset;
    }
    return NULL;
}

uint64_t fohook_ctx_reads(const void *elf, size_t len, const char *section)
{
    char first[64];
    fovm_error err;
    if (section == NULL || section[0] == '\0') {
        if (fovm_elf_program_section(elf, len, 0, first, sizeof first, &err) != FOVM_OK)
            return FOHOOK_CTX_ALL;
        section = first;
    }
    size_t size = 0;
    const void *insns = section_bytes(elf, len, section, &size);
    if (insns == NULL)
        return FOHOOK_CTX_ALL;
    return fohook_ctx_reads_insns(insns, size / 8);
}
