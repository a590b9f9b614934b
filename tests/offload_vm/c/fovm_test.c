/*
 * C unit tests of the VM core, run by tests/offload_vm/test_c.py natively under
 * -fsanitize=address,undefined and cross-built for aarch64 and armhf under qemu-user.
 *
 *   fovm_test CASES [ELF]
 *
 * CASES is a file of conformance programs the Python side assembled: per case u32 program
 * length, u32 memory length, u64 expected r0, the program, the memory. ELF (optional) is
 * tests/offload_vm/data/elf/maps.c compiled by clang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovm.h"

static int checks, failures;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        checks++;                                                                                 \
        if (!(cond)) {                                                                            \
            failures++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

/* Instruction encoding. */
#define INSN(code, dst, src, off, imm)                                                            \
    (((uint64_t)(uint32_t)(imm) << 32) | ((uint64_t)(uint16_t)(off) << 16) |                      \
     ((uint64_t)(src) << 12) | ((uint64_t)(dst) << 8) | (uint64_t)(code))
#define MOV_IMM(d, i) INSN(0xb7, d, 0, 0, i)
#define EXIT INSN(0x95, 0, 0, 0, 0)

static int identity(void *user, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                    uint64_t *ret)
{
    (void)user, (void)a2, (void)a3, (void)a4, (void)a5;
    *ret = a1;
    return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void run_cases(const char *path, int engine)
{
    int used = 0;
    size_t len, off = 0, n = 0, passed = 0;
    unsigned char *data = slurp(path, &len);
    CHECK(data != NULL, "cannot read %s", path);
    while (data && off + 16 <= len) {
        uint32_t plen, mlen;
        uint64_t want, r0 = 0;
        unsigned char *mem;
        fovm_error err;
        fovm_vm *vm = fovm_create(&err);
        memcpy(&plen, data + off, 4);
        memcpy(&mlen, data + off + 4, 4);
        memcpy(&want, data + off + 8, 8);
        off += 16;
        mem = malloc(mlen ? mlen : 1); /* its own allocation: ASan sees overruns */
        memcpy(mem, data + off + plen, mlen);
        fovm_register_helper(vm, 5, "identity", 1, identity, NULL, &err);
        fovm_set_engine(vm, engine);
        if (fovm_load(vm, data + off, plen, &err) == FOVM_OK &&
            (used = fovm_engine(vm)) != 0 &&
            fovm_exec(vm, mlen ? mem : NULL, mlen, &r0, &err) == FOVM_OK && r0 == want)
            passed++;
        else
            fprintf(stderr, "case %u: r0 0x%llx want 0x%llx: %s\n", (unsigned)n,
                    (unsigned long long)r0, (unsigned long long)want, err.msg);
        off += plen + mlen;
        n++;
        free(mem);
        fovm_destroy(vm);
    }
    CHECK(n > 0 && passed == n, "%u of %u conformance cases passed", (unsigned)passed, (unsigned)n);
    printf("conformance: %u/%u (%s)\n", (unsigned)passed, (unsigned)n,
           used == FOVM_ENGINE_JIT ? "jit" : "interpreter");
    free(data);
}

static void test_arena(void)
{
    static uint64_t arena[16384]; /* 128 KiB, as firmware would give */
    uint64_t prog[] = {MOV_IMM(0, 7), EXIT}, r0 = 0;
    fovm_error err;
    fovm_vm *vm;
    CHECK(fovm_create_in(arena, 64, &err) == NULL && err.code == FOVM_E_NOMEM, "%s", err.msg);
    vm = fovm_create_in((char *)arena + 1, sizeof arena - 1, &err); /* misaligned on purpose */
    CHECK(vm != NULL, "%s", err.msg);
    CHECK(fovm_load(vm, prog, sizeof prog, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_exec(vm, NULL, 0, &r0, &err) == FOVM_OK && r0 == 7, "r0 %llu", (unsigned long long)r0);
    /* loading again reuses the arena instead of leaking it */
    {
        int i, ok = 1;
        for (i = 0; i < 1000 && ok; i++)
            ok = fovm_load(vm, prog, sizeof prog, &err) == FOVM_OK;
        CHECK(ok, "reload %d: %s", i, err.msg);
    }
    fovm_destroy(vm);
}

static void test_faults(int engine)
{
    uint64_t oob[] = {INSN(0x61, 0, 1, 2, 0), EXIT}; /* ldxw r0, [r1+2] */
    uint64_t loop[] = {MOV_IMM(0, 0), INSN(0x05, 0, 0, -1, 0)};
    uint64_t uninit[] = {INSN(0xbf, 0, 3, 0, 0), EXIT};
    unsigned char ctx[4] = {1, 2, 3, 4};
    uint64_t r0 = 0, executed = 0;
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    fovm_set_engine(vm, engine);
    CHECK(fovm_load(vm, oob, sizeof oob, &err) == FOVM_OK, "%s", err.msg);
#if defined(__x86_64__) && defined(__linux__)
    CHECK(fovm_engine(vm) == (engine == FOVM_ENGINE_AUTO ? FOVM_ENGINE_JIT : FOVM_ENGINE_INTERP),
          "engine %d", fovm_engine(vm));
#else
    CHECK(fovm_engine(vm) == FOVM_ENGINE_INTERP, "engine %d", fovm_engine(vm));
#endif
    CHECK(fovm_exec(vm, ctx, sizeof ctx, &r0, &err) == FOVM_E_FAULT && err.pc == 0 &&
              strstr(err.msg, "out-of-bounds read of 4 bytes") && strstr(err.msg, "at PC 0"),
          "%s", err.msg);
    CHECK(fovm_load(vm, loop, sizeof loop, &err) == FOVM_OK, "%s", err.msg);
    fovm_set_budget(vm, 500);
    CHECK(fovm_exec_counted(vm, NULL, 0, &r0, &executed, &err) == FOVM_E_BUDGET &&
              executed == 500 && strcmp(err.msg, "instruction budget of 500 exhausted at PC 1") == 0,
          "%s (%llu)", err.msg, (unsigned long long)executed);
    CHECK(fovm_load(vm, uninit, sizeof uninit, &err) == FOVM_E_REJECTED && err.pc == 0 &&
              strcmp(err.msg, "register r3 is read before it is written at PC 0") == 0,
          "%s", err.msg);
    CHECK(fovm_exec(vm, NULL, 0, &r0, &err) == FOVM_E_STATE, "%s", err.msg);
    CHECK(fovm_engine(vm) == 0 && fovm_engine(NULL) == 0, "an engine with nothing loaded");
    CHECK(fovm_set_engine(vm, FOVM_ENGINE_JIT) == FOVM_E_INVAL &&
              fovm_set_engine(NULL, FOVM_ENGINE_AUTO) == FOVM_E_INVAL,
          "set_engine takes AUTO or INTERP");
    CHECK(fovm_load(vm, NULL, 0, NULL) != FOVM_OK, "NULL error struct is allowed");
    fovm_destroy(vm);
}

#include "fovm_test_maps.h"

int main(int argc, char **argv)
{
    if (argc > 1) {
        run_cases(argv[1], FOVM_ENGINE_AUTO);
        run_cases(argv[1], FOVM_ENGINE_INTERP);
    }
    test_arena();
    test_faults(FOVM_ENGINE_AUTO);
    test_faults(FOVM_ENGINE_INTERP);
    test_maps();
    test_shared_storage();
    if (argc > 2)
        test_elf(argv[2]);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
