/*
 * libFuzzer target: load + verify + run whatever bytes come in, with a hash map and an array
 * map present and a small budget. Input: byte 0 chooses raw instructions (even) or an ELF
 * object (odd); for raw input byte 1 is the context length, the context follows, then the
 * program. Any crash, sanitizer report or leak is a bug; rejections and faults are fine.
 *
 * Raw programs run twice in one VM, in native code (where the VM compiles it) and in the
 * interpreter: status, error code and PC, instructions executed, r0, the context and the maps
 * must agree (programs calling ktime_get_ns or get_prandom_u32, or callx, are only run).
 * A disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fovm.h"

static void add_map(fovm_vm *vm, uint32_t type, uint32_t value_size, const char *name)
{
    fovm_map_info info;
    memset(&info, 0, sizeof info);
    strcpy(info.name, name);
    info.type = type;
    info.key_size = 4;
    info.value_size = value_size;
    info.max_entries = 4;
    fovm_map_create(vm, &info, NULL);
}

struct outcome {
    int rc, code, pc;
    uint64_t r0, executed;
    uint8_t ctx[256];
    uint8_t maps[4 * 16 + 4 * 12];
};

/* One run of the loaded program in the given engine, from empty maps and the input's
 * context (the same buffer each time, so pointers the program computes compare equal). */
static void run_in(fovm_vm *vm, int engine, const uint8_t *ctx, size_t ctx_len,
                   struct outcome *o)
{
    static uint8_t buf[256];
    static const uint8_t zero[16];
    fovm_error err;
    uint32_t k, n;
    int have;
    memset(o, 0, sizeof *o);
    fovm_set_engine(vm, engine);
    while (fovm_map_next_key(fovm_map_at(vm, 0), NULL, &k, NULL) == FOVM_OK)
        fovm_map_delete(fovm_map_at(vm, 0), &k, NULL);
    for (k = 0; k < 4; k++)
        fovm_map_update(fovm_map_at(vm, 1), &k, zero, FOVM_ANY, NULL);
    memcpy(buf, ctx, ctx_len);
    o->rc = fovm_exec_counted(vm, buf, ctx_len, &o->r0, &o->executed, &err);
    if (o->rc) {
        o->code = err.code;
        o->pc = err.pc;
    }
    memcpy(o->ctx, buf, ctx_len);
    for (k = 0; k < 4; k++)
        fovm_map_lookup(fovm_map_at(vm, 1), &k, o->maps + 16 * k, NULL);
    n = 0;
    have = fovm_map_next_key(fovm_map_at(vm, 0), NULL, &k, NULL) == FOVM_OK;
    while (have && n < 4) { /* the hash map's entries in its own order */
        memcpy(o->maps + 64 + 12 * n, &k, 4);
        fovm_map_lookup(fovm_map_at(vm, 0), &k, o->maps + 68 + 12 * n, NULL);
        n++;
        have = fovm_map_next_key(fovm_map_at(vm, 0), &k, &k, NULL) == FOVM_OK;
    }
}

/* Whether the program calls ktime_get_ns or get_prandom_u32 (or any helper through callx):
 * their results differ between two runs. */
static int varies(const uint8_t *prog, size_t len)
{
    size_t i;
    for (i = 0; i + 8 <= len; i += 8) {
        int32_t imm;
        memcpy(&imm, prog + i + 4, 4);
        if ((prog[i] == 0x85 && (imm == 5 || imm == 7)) || prog[i] == 0x8d)
            return 1;
    }
    return 0;
}

static void differential(const uint8_t *data, size_t size)
{
    static struct outcome native, interp;
    size_t ctx_len = data[1] > size - 2 ? size - 2 : data[1];
    const uint8_t *prog = data + 2 + ctx_len;
    size_t plen = size - 2 - ctx_len;
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    int same;
    if (!vm)
        return;
    fovm_set_budget(vm, 10000);
    add_map(vm, FOVM_MAP_HASH, 8, "h");
    add_map(vm, FOVM_MAP_ARRAY, 16, "a");
    if (fovm_load(vm, prog, plen, &err) == FOVM_OK) {
        run_in(vm, FOVM_ENGINE_AUTO, data + 2, ctx_len, &native);
        run_in(vm, FOVM_ENGINE_INTERP, data + 2, ctx_len, &interp);
        same = varies(prog, plen) || /* time or chance may steer them apart: only run both */
               (native.rc == interp.rc && native.code == interp.code && native.pc == interp.pc &&
                native.executed == interp.executed && native.r0 == interp.r0 &&
                !memcmp(native.ctx, interp.ctx, sizeof native.ctx) &&
                !memcmp(native.maps, interp.maps, sizeof native.maps));
        if (!same)
            abort();
    }
    fovm_destroy(vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t ctx[256];
    uint64_t r0;
    fovm_error err;
    fovm_vm *vm;
    if (size < 2)
        return 0;
    if (!(data[0] & 1)) {
        differential(data, size);
        return 0;
    }
    vm = fovm_create(&err);
    if (!vm)
        return 0;
    fovm_set_budget(vm, 10000);
    if (data[0] & 2)
        fovm_set_engine(vm, FOVM_ENGINE_INTERP);
    if (fovm_load_elf(vm, data + 1, size - 1, NULL, &err) == FOVM_OK)
        fovm_exec(vm, ctx, sizeof ctx, &r0, &err);
    fovm_destroy(vm);
    return 0;
}
