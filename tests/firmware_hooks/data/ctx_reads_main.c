/* Test program for fohook_ctx_reads (which context bytes a policy may read).
 * Without arguments: hand-written programs, each with the mask it must give ("ok NAME" or
 * "FAIL NAME"). With OBJECT [SECTION]: the mask of that policy object, in hex. */
#include <stdio.h>
#include <stdlib.h>

#include "fohook_reads.h"

#define I(code, dst, src, off, imm) {code, (uint8_t)((dst) | ((src) << 4)), off, imm}
#define LDXW(dst, src, off) I(0x61, dst, src, off, 0)
#define LDXDW(dst, src, off) I(0x79, dst, src, off, 0)
#define LDXB(dst, src, off) I(0x71, dst, src, off, 0)
#define STXDW(dst, src, off) I(0x7b, dst, src, off, 0)
#define STXW(dst, src, off) I(0x63, dst, src, off, 0)
#define STW(dst, off, imm) I(0x62, dst, 0, off, imm)
#define MOV(dst, src) I(0xbf, dst, src, 0, 0)
#define MOVI(dst, imm) I(0xb7, dst, 0, 0, imm)
#define ADDI(dst, imm) I(0x07, dst, 0, 0, imm)
#define ADD(dst, src) I(0x0f, dst, src, 0, 0)
#define MOV32(dst, src) I(0xbc, dst, src, 0, 0)
#define AND32I(dst, imm) I(0x54, dst, 0, 0, imm)
#define JEQI(dst, imm, off) I(0x15, dst, 0, off, imm)
#define JA(off) I(0x05, 0, 0, off, 0)
#define CALL(id) I(0x85, 0, 0, 0, id)
#define CALLSUB(rel) I(0x85, 0, 1, 0, rel)
#define XADDDW(dst, src, off) I(0xdb, dst, src, off, 0)
#define EXIT I(0x95, 0, 0, 0, 0)

struct insn {
    uint8_t code, regs;
    int16_t off;
    int32_t imm;
};

struct example {
    const char *name;
    struct insn prog[16];
    uint64_t want;
};

#define ALL FOHOOK_CTX_ALL
#define BYTES(from, n) ((((uint64_t)1 << (n)) - 1) << (from))

static const struct example examples[] = {
    {"port only", {LDXW(0, 1, 20), EXIT}, BYTES(20, 4)},
    {"protocol", {LDXW(0, 1, 8), EXIT}, BYTES(8, 4)},
    {"copy and offset", {MOV(6, 1), ADDI(6, 4), LDXW(0, 6, 0), EXIT}, BYTES(4, 4)},
    {"write only", {STW(1, 20, 80), MOVI(0, 1), EXIT}, 0},
    {"spill and reload",
     {STXDW(10, 1, -8), MOVI(1, 0), LDXDW(2, 10, -8), LDXW(0, 2, 4), EXIT}, BYTES(4, 4)},
    {"spill through a stack pointer",
     {MOV(3, 10), ADDI(3, -16), STXDW(3, 1, 0), LDXDW(4, 10, -16), LDXW(0, 4, 8), EXIT},
     BYTES(8, 4)},
    {"spill overwritten by an integer",
     {STXDW(10, 1, -8), STXDW(10, 2, -8), LDXDW(3, 10, -8), LDXW(0, 3, 8), EXIT}, 0},
    {"two offsets joined",
     {MOV(2, 1), JEQI(0, 0, 2), ADDI(2, 16), JA(1), ADDI(2, 24), LDXW(0, 2, 0), EXIT},
     BYTES(16, 12)},
    {"maybe the context", {JEQI(2, 0, 1), MOV(3, 1), LDXB(0, 3, 5), EXIT}, BYTES(5, 1)},
    {"read-only helper with a stack key",
     {MOV(6, 1), MOV(2, 10), ADDI(2, -4), MOVI(1, 0), CALL(1), LDXW(0, 6, 44), EXIT},
     BYTES(44, 4)},
    {"context to a helper", {CALL(6), EXIT}, ALL},
    {"context left in r3 at a lookup (2 arguments)",
     {MOV(3, 1), MOVI(1, 0), MOV(2, 10), ADDI(2, -4), CALL(1), MOVI(0, 0), EXIT}, 0},
    {"context or stack pointer joined, then unused",
     {JEQI(2, 0, 2), MOV(3, 1), JA(2), MOV(3, 10), ADDI(3, -8), MOVI(0, 0), EXIT}, 0},
    {"context or stack pointer joined, then read through",
     {JEQI(2, 0, 2), MOV(3, 1), JA(2), MOV(3, 10), ADDI(3, -8), LDXW(0, 3, 0), EXIT}, ALL},
    {"stack pointer on one path, an integer on the other, written through",
     {STXDW(10, 1, -8), JEQI(2, 0, 3), MOV(3, 10), ADDI(3, -8), JA(1), MOVI(3, 0), STXDW(3, 2, 0),
      LDXDW(4, 10, -8), LDXW(0, 4, 8), EXIT},
     BYTES(8, 4)},
    {"context as map_update's value (its 3rd argument)",
     {MOV(3, 1), MOVI(1, 0), MOV(2, 10), ADDI(2, -4), MOVI(4, 0), CALL(2), EXIT}, ALL},
    {"context to a subprogram", {CALLSUB(1), EXIT, MOVI(0, 0), EXIT}, ALL},
    {"part of a spilled pointer overwritten",
     {STXDW(10, 1, -8), STW(10, -8, 0), LDXDW(2, 10, -8), LDXW(0, 2, 0), EXIT}, ALL},
    {"part of a spilled pointer read", {STXDW(10, 1, -8), LDXW(0, 10, -8), EXIT}, ALL},
    {"stack pointer to a subprogram, then a spill",
     {MOV(6, 1), MOV(1, 10), ADDI(1, -8), CALLSUB(4), STXDW(10, 6, -8), LDXDW(2, 10, -8),
      LDXW(0, 2, 0), EXIT, MOVI(0, 0), EXIT},
     ALL},
    {"variable offset", {ADD(1, 2), LDXW(0, 1, 0), EXIT}, ALL},
    {"pointer cut to 32 bits", {MOV32(2, 1), LDXW(0, 2, 0), EXIT}, ALL},
    {"pointer masked", {AND32I(1, -8), EXIT}, ALL},
    {"context pointer stored in a map value",
     {MOV(6, 1), MOVI(1, 0), CALL(1), STXDW(0, 6, 0), EXIT}, ALL},
    {"atomic add on the context", {MOVI(2, 1), XADDDW(1, 2, 8), EXIT}, BYTES(8, 8)},
    {"loop walking the context",
     {MOVI(0, 0), LDXW(3, 1, 0), ADDI(1, 4), JEQI(3, 0, -3), EXIT}, ALL},
    {"jump out of the program", {JA(5), EXIT}, ALL},
    {"legacy packet load", {I(0x30, 0, 0, 0, 0), EXIT}, ALL},
};

static size_t count(const struct example *e)
{
    size_t n = 0;
    while (n < 16 && e->prog[n].code != 0)
        n++;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        int failed = 0;
        for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
            const struct example *e = &examples[i];
            uint64_t got = fohook_ctx_reads_insns(e->prog, count(e));
            failed |= got != e->want;
            printf("%s %s: %016llx (want %016llx)\n", got == e->want ? "ok" : "FAIL", e->name,
                   (unsigned long long)got, (unsigned long long)e->want);
        }
        return failed;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL)
        return 2;
    static char data[1 << 20] __attribute__((aligned(8)));
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    printf("%016llx\n",
           (unsigned long long)fohook_ctx_reads(data, len, argc > 2 ? argv[2] : NULL));
    return 0;
}
