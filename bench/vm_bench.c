/*
 * Driver of bench/vm.py: times each workload of vm_progs.c in our VM (loaded from the clang
 * object) and natively (the same source built with gcc -O2 -DNATIVE), in the same process.
 *
 *   vm_bench PROGS.o ITERATIONS [WORKLOAD]
 *   vm_bench --select POLICY.o CTX.bin ROWS.bin ITERATIONS
 *
 * The second form times a real policy (examples/policies/select_target.c) with its
 * candidates map in shared storage, as the hook runs it: CTX.bin is the connect context,
 * ROWS.bin the map's rows (u32 key, then the value). It has no native baseline (0).
 *
 * Prints one line per workload: name jit_ns_per_run insns_per_run interp_ns_per_run
 * native_ns_per_run load_verify_us engine. jit_ns_per_run is the VM's default engine (native
 * code where the VM compiles programs; "engine" says which ran), interp_ns_per_run the same
 * VM forced to interpret (fovm_set_engine).
 */
#define _POSIX_C_SOURCE 200112L
#define _ISOC11_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fovm.h"

typedef unsigned int u32;
typedef unsigned long long u64;
struct candidate { u32 latency_us, flags, ip4, port; };
struct policy_ctx { u32 want_flags, chosen, ip4, port; };
struct candidate native_candidates[16];
u64 native_empty(void *ctx);
u64 native_sum(void *ctx);
u64 native_hash(unsigned char *ctx);
u64 native_policy(struct policy_ctx *ctx);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* on-CPU time: fair on a shared machine */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(*len);
    if (buf && fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void fill_candidates(fovm_vm *vm)
{
    u32 i;
    for (i = 0; i < 16; i++) {
        struct candidate c = {1000 - i * 37 % 500, (i % 3 == 0) ? 0x3u : 0x1u, 0x0a000001u + i,
                              8000 + i};
        native_candidates[i] = c;
        if (vm)
            fovm_map_update(fovm_map_find(vm, "candidates"), &i, &c, FOVM_ANY, NULL);
    }
}

static volatile u64 sink;

static double native_ns(const char *name, void *ctx, long iters)
{
    double t0 = now_ns();
    long i;
    for (i = 0; i < iters; i++) {
        if (!strcmp(name, "empty"))
            sink += native_empty(ctx);
        else if (!strcmp(name, "sum"))
            sink += native_sum(ctx);
        else if (!strcmp(name, "hash"))
            sink += native_hash(ctx);
        else
            sink += native_policy(ctx);
    }
    return (now_ns() - t0) / (double)iters;
}

static int bench(const char *name, const unsigned char *obj, size_t len, long iters)
{
    /* policy_shared: the policy with its candidates in shared storage, as the hook runs it */
    int shared = !strcmp(name, "policy_shared");
    const char *section = shared ? "policy" : name;
    void *storage = NULL;
    unsigned char ctx[64];
    struct policy_ctx pctx = {0x2, 0, 0, 0};
    void *c = ctx;
    size_t clen = sizeof ctx;
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    uint64_t r0 = 0, executed = 0;
    double t0, load_ns, vm_ns, interp_ns, nat;
    int engine;
    long i, loads = 200;
    for (i = 0; i < (long)sizeof ctx; i++)
        ctx[i] = (unsigned char)(i * 7 + 1);
    if (!strcmp(section, "policy")) {
        c = &pctx;
        clen = sizeof pctx;
    }
    t0 = now_ns();
    for (i = 0; i < loads; i++) {
        if (fovm_load_elf(vm, obj, len, section, &err) != FOVM_OK) {
            fprintf(stderr, "%s: %s\n", name, err.msg);
            return 1;
        }
    }
    load_ns = (now_ns() - t0) / (double)loads;
    fill_candidates(vm);
    if (shared) {
        fovm_map *m = fovm_map_find(vm, "candidates");
        fovm_map_info info;
        size_t size;
        fovm_map_get_info(m, &info);
        size = fovm_map_storage_size(&info);
        storage = aligned_alloc(64, (size + 63) / 64 * 64);
        if (!storage || fovm_map_attach_storage(m, storage, size, 1, &err) != FOVM_OK) {
            fprintf(stderr, "%s: %s\n", name, err.msg);
            return 1;
        }
    }
    if (fovm_exec_counted(vm, c, clen, &r0, &executed, &err) != FOVM_OK) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        return 1;
    }
    if (r0 != (!strcmp(name, "empty") ? native_empty(c) : !strcmp(name, "sum") ? native_sum(c)
               : !strcmp(name, "hash") ? native_hash(c) : native_policy(&pctx))) {
        fprintf(stderr, "%s: vm and native disagree\n", name);
        return 1;
    }
    engine = fovm_engine(vm);
    t0 = now_ns();
    for (i = 0; i < iters; i++)
        fovm_exec(vm, c, clen, &r0, NULL);
    vm_ns = (now_ns() - t0) / (double)iters;
    fovm_set_engine(vm, FOVM_ENGINE_INTERP);
    t0 = now_ns();
    for (i = 0; i < iters; i++)
        fovm_exec(vm, c, clen, &r0, NULL);
    interp_ns = (now_ns() - t0) / (double)iters;
    if (r0 != (!strcmp(name, "empty") ? native_empty(c) : !strcmp(name, "sum") ? native_sum(c)
               : !strcmp(name, "hash") ? native_hash(c) : native_policy(&pctx))) {
        fprintf(stderr, "%s: interpreter and native disagree\n", name);
        return 1;
    }
    nat = native_ns(name, c, iters);
    printf("%s %.1f %llu %.1f %.1f %.1f %s\n", name, vm_ns, (unsigned long long)executed,
           interp_ns, nat, load_ns / 1000.0, engine == FOVM_ENGINE_JIT ? "jit" : "interpreter");
    fovm_destroy(vm);
    free(storage);
    return 0;
}

static int bench_select(char **argv)
{
    size_t olen, clen, rlen, size, off;
    unsigned char *obj = slurp(argv[2], &olen), *ctx0 = slurp(argv[3], &clen);
    unsigned char *rows = slurp(argv[4], &rlen), ctx[256];
    long iters = atol(argv[5]), i, loads = 200;
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    fovm_map *m;
    fovm_map_info info;
    void *storage;
    uint64_t r0 = 0, executed = 0;
    double t0, load_ns, jit_ns, interp_ns;
    int engine;
    if (!obj || !ctx0 || !rows || clen > sizeof ctx || iters <= 0)
        return 2;
    t0 = now_ns();
    for (i = 0; i < loads; i++)
        if (fovm_load_elf(vm, obj, olen, NULL, &err) != FOVM_OK) {
            fprintf(stderr, "select_target: %s\n", err.msg);
            return 1;
        }
    load_ns = (now_ns() - t0) / (double)loads;
    m = fovm_map_find(vm, "candidates");
    fovm_map_get_info(m, &info);
    size = fovm_map_storage_size(&info);
    storage = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!storage || fovm_map_attach_storage(m, storage, size, 1, &err) != FOVM_OK)
        return 1;
    for (off = 0; off + 4 + info.value_size <= rlen; off += 4 + info.value_size)
        fovm_map_update(m, rows + off, rows + off + 4, FOVM_ANY, NULL);
    memcpy(ctx, ctx0, clen);
    if (fovm_exec_counted(vm, ctx, clen, &r0, &executed, &err) != FOVM_OK || r0 != 1) {
        fprintf(stderr, "select_target: r0 %llu: %s\n", (unsigned long long)r0, err.msg);
        return 1;
    }
    engine = fovm_engine(vm);
    t0 = now_ns();
    for (i = 0; i < iters; i++) {
        memcpy(ctx, ctx0, clen);
        fovm_exec(vm, ctx, clen, &r0, NULL);
    }
    jit_ns = (now_ns() - t0) / (double)iters;
    fovm_set_engine(vm, FOVM_ENGINE_INTERP);
    t0 = now_ns();
    for (i = 0; i < iters; i++) {
        memcpy(ctx, ctx0, clen);
        fovm_exec(vm, ctx, clen, &r0, NULL);
    }
    interp_ns = (now_ns() - t0) / (double)iters;
    printf("select_target %.1f %llu %.1f 0 %.1f %s\n", jit_ns, (unsigned long long)executed,
           interp_ns, load_ns / 1000.0, engine == FOVM_ENGINE_JIT ? "jit" : "interpreter");
    fovm_destroy(vm);
    free(storage);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *names[] = {"empty", "sum", "hash", "policy", "policy_shared"};
    size_t len, i;
    unsigned char *obj = argc > 2 ? slurp(argv[1], &len) : NULL;
    long iters = argc > 2 ? atol(argv[2]) : 0;
    int rc = 0;
    if (argc == 6 && !strcmp(argv[1], "--select"))
        return bench_select(argv);
    if (!obj || iters <= 0) {
        fprintf(stderr, "usage: vm_bench PROGS.o ITERATIONS\n");
        return 2;
    }
    fill_candidates(NULL);
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (argc < 4 || !strcmp(argv[3], names[i]))
            rc |= bench(names[i], obj, len, iters);
    free(obj);
    return rc;
}
