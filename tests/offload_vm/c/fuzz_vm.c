/*
 * libFuzzer target: load + verify + run whatever bytes come in, with a hash map and an array
 * map present and a small budget. Input: byte 0 chooses raw instructions (even) or an ELF
 * object (odd); for raw input byte 1 is the context length, the context follows, then the
 * program. Any crash, sanitizer report or leak is a bug; rejections and faults are fine.
 */
#include <stdint.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t ctx[256];
    size_t ctx_len;
    uint64_t r0;
    fovm_error err;
    fovm_vm *vm;
    if (size < 2)
        return 0;
    vm = fovm_create(&err);
    if (!vm)
        return 0;
    fovm_set_budget(vm, 10000);
    if (data[0] & 1) {
        if (fovm_load_elf(vm, data + 1, size - 1, NULL, &err) == FOVM_OK)
            fovm_exec(vm, ctx, sizeof ctx, &r0, &err);
    } else {
        add_map(vm, FOVM_MAP_HASH, 8, "h");
        add_map(vm, FOVM_MAP_ARRAY, 16, "a");
        ctx_len = data[1];
        if (ctx_len > size - 2)
            ctx_len = size - 2;
        memcpy(ctx, data + 2, ctx_len);
        if (fovm_load(vm, data + 2 + ctx_len, size - 2 - ctx_len, &err) == FOVM_OK)
            fovm_exec(vm, ctx, ctx_len, &r0, &err);
    }
    fovm_destroy(vm);
    return 0;
}
