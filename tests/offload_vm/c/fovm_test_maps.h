/* Map, shared storage and ELF parts of fovm_test.c (included once). */

/* stw [r10-4], 7; r1 = map 0; r2 = r10-4; call 1 (lookup); if r0 == 0 exit 0;
 * r1 = 1; lock add [r0], r1; r0 = [r0]; exit */
static const uint64_t count_prog[] = {
    INSN(0x62, 10, 0, -4, 7),
    INSN(0x18, 1, 1, 0, 0), INSN(0, 0, 0, 0, 0),
    INSN(0xbf, 2, 10, 0, 0), INSN(0x07, 2, 0, 0, -4),
    INSN(0x85, 0, 0, 0, 1),
    INSN(0x55, 0, 0, 2, 0),
    MOV_IMM(0, 0), EXIT,
    MOV_IMM(1, 1), INSN(0xdb, 0, 1, 0, 0), INSN(0x79, 0, 0, 0, 0), EXIT,
};

static fovm_map *make_map(fovm_vm *vm, uint32_t type, const char *name)
{
    fovm_map_info info;
    fovm_error err;
    fovm_map *m;
    memset(&info, 0, sizeof info);
    strcpy(info.name, name);
    info.type = type;
    info.key_size = 4;
    info.value_size = 8;
    info.max_entries = 16;
    m = fovm_map_create(vm, &info, &err);
    CHECK(m != NULL, "%s", err.msg);
    return m;
}

static void test_maps(void)
{
    uint32_t key = 7, next = 0;
    uint64_t value = 40, r0 = 0;
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    fovm_map *m = make_map(vm, FOVM_MAP_HASH, "counts");
    CHECK(fovm_map_find(vm, "counts") == m && fovm_map_count(vm) == 1, "find");
    CHECK(fovm_load(vm, count_prog, sizeof count_prog, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_exec(vm, NULL, 0, &r0, &err) == FOVM_OK && r0 == 0, "absent key: %s", err.msg);
    CHECK(fovm_map_update(m, &key, &value, FOVM_NOEXIST, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_update(m, &key, &value, FOVM_NOEXIST, &err) == FOVM_E_EXIST, "%s", err.msg);
    CHECK(fovm_exec(vm, NULL, 0, &r0, &err) == FOVM_OK && r0 == 41, "r0 %llu", (unsigned long long)r0);
    CHECK(fovm_map_lookup(m, &key, &value, &err) == FOVM_OK && value == 41, "value %llu",
          (unsigned long long)value);
    CHECK(fovm_map_next_key(m, NULL, &next, &err) == FOVM_OK && next == 7, "next %u", next);
    CHECK(fovm_map_next_key(m, &next, &next, &err) == FOVM_E_NOENT, "only one key");
    CHECK(fovm_map_delete(m, &key, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_lookup(m, &key, &value, &err) == FOVM_E_NOENT, "deleted");
    fovm_destroy(vm);
}

static void test_shared_storage(void)
{
    uint32_t key = 7;
    uint64_t value = 5, r0 = 0;
    fovm_error err;
    fovm_vm *a = fovm_create(&err), *b = fovm_create(&err);
    fovm_map *ma = make_map(a, FOVM_MAP_HASH, "shared"), *mb = make_map(b, FOVM_MAP_HASH, "shared");
    fovm_map_info info;
    size_t size;
    void *mem;
    fovm_map_get_info(ma, &info);
    size = fovm_map_storage_size(&info);
    mem = malloc(size);
    CHECK(size > 0 && mem != NULL, "size %u", (unsigned)size);
    CHECK(fovm_map_update(ma, &key, &value, FOVM_ANY, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_attach_storage(ma, mem, size - 8, 1, &err) == FOVM_E_NOMEM, "%s", err.msg);
    CHECK(fovm_map_attach_storage(ma, mem, size, 1, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_attach_storage(mb, mem, size, 0, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_load(b, count_prog, sizeof count_prog, &err) == FOVM_OK, "%s", err.msg);
    /* b's program sees a's entry (a snapshot: its lock add stays private) */
    CHECK(fovm_exec(b, NULL, 0, &r0, &err) == FOVM_OK && r0 == 6, "r0 %llu: %s",
          (unsigned long long)r0, err.msg);
    value = 100;
    CHECK(fovm_map_update(mb, &key, &value, FOVM_EXIST, &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_lookup(ma, &key, &value, &err) == FOVM_OK && value == 100, "value %llu",
          (unsigned long long)value);
    fovm_destroy(a);
    fovm_destroy(b);
    free(mem);
}

static void test_elf(const char *path)
{
    size_t len;
    unsigned char *obj = slurp(path, &len);
    struct { uint32_t key, out; uint64_t count; } ctx = {3, 0, 0};
    uint32_t zero = 0, mult = 5;
    uint64_t r0 = 0;
    char name[64];
    fovm_error err;
    fovm_vm *vm = fovm_create(&err);
    CHECK(obj != NULL, "cannot read %s", path);
    CHECK(fovm_elf_program_section(obj, len, 0, name, sizeof name, &err) == FOVM_OK &&
              strcmp(name, "count") == 0, "%s", name);
    CHECK(fovm_load_elf(vm, obj, len, "count", &err) == FOVM_OK, "%s", err.msg);
    CHECK(fovm_map_update(fovm_map_find(vm, "config"), &zero, &mult, 0, &err) == FOVM_OK, "%s",
          err.msg);
    CHECK(fovm_exec(vm, &ctx, sizeof ctx, &r0, &err) == FOVM_OK && r0 == 1 && ctx.out == 15 &&
              ctx.count == 1, "r0 %llu out %u: %s", (unsigned long long)r0, ctx.out, err.msg);
    CHECK(fovm_load_elf(vm, obj, len / 2, NULL, &err) != FOVM_OK, "a truncated object loads");
    free(obj);
    fovm_destroy(vm);
}
