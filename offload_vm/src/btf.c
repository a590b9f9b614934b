/* Just enough BTF to read map definitions of the `.maps` section:
 * struct { __uint(type, ...); __uint(max_entries, ...); __type(key, K); __type(value, V); }.
 * Type records are found by walking the type section (no allocation); every offset is
 * checked against the section. */
#include "fovm_int.h"

enum {
    BTF_INT = 1, BTF_PTR, BTF_ARRAY, BTF_STRUCT, BTF_UNION, BTF_ENUM, BTF_FWD, BTF_TYPEDEF,
    BTF_VOLATILE, BTF_CONST, BTF_RESTRICT, BTF_FUNC, BTF_FUNC_PROTO, BTF_VAR, BTF_DATASEC,
    BTF_FLOAT, BTF_DECL_TAG, BTF_TYPE_TAG, BTF_ENUM64
};

struct btf {
    const uint8_t *types, *strs;
    uint32_t types_len, strs_len;
};

static uint32_t u32_at(const uint8_t *p)
{
    uint32_t v;
    fovm_copy(&v, p, 4);
    return v;
}

static unsigned kind_of(uint32_t info) { return (info >> 24) & 0x1f; }
static unsigned vlen_of(uint32_t info) { return info & 0xffff; }

/* Bytes after the 12-byte common header of a type record. */
static uint32_t extra_len(uint32_t info)
{
    unsigned v = vlen_of(info);
    switch (kind_of(info)) {
    case BTF_INT: case BTF_VAR: case BTF_DECL_TAG: return 4;
    case BTF_ARRAY: return 12;
    case BTF_STRUCT: case BTF_UNION: case BTF_DATASEC: case BTF_ENUM64: return 12 * v;
    case BTF_ENUM: case BTF_FUNC_PROTO: return 8 * v;
    default: return 0;
    }
}

/* The record of type id (1-based), or NULL. */
static const uint8_t *type_at(const struct btf *b, uint32_t id)
{
    uint32_t off = 0, n = 1;
    while (off + 12 <= b->types_len) {
        uint32_t len = 12 + extra_len(u32_at(b->types + off + 4));
        if (off + len > b->types_len)
            return NULL;
        if (n == id)
            return b->types + off;
        off += len;
        n++;
    }
    return NULL;
}

static const char *str_at(const struct btf *b, uint32_t off)
{
    uint32_t i;
    if (off >= b->strs_len)
        return "";
    for (i = off; i < b->strs_len; i++)
        if (!b->strs[i])
            return (const char *)b->strs + off;
    return "";
}

/* Follows typedefs and qualifiers to the type that has a shape. */
static const uint8_t *resolve(const struct btf *b, uint32_t id)
{
    int depth;
    for (depth = 0; depth < 32; depth++) {
        const uint8_t *t = type_at(b, id);
        unsigned k;
        if (!t)
            return NULL;
        k = kind_of(u32_at(t + 4));
        if (k != BTF_TYPEDEF && k != BTF_VOLATILE && k != BTF_CONST && k != BTF_RESTRICT &&
            k != BTF_TYPE_TAG && k != BTF_VAR)
            return t;
        id = u32_at(t + 8);
    }
    return NULL;
}

static uint64_t type_size(const struct btf *b, uint32_t id, int depth)
{
    const uint8_t *t = resolve(b, id);
    if (!t || depth > 16)
        return 0;
    switch (kind_of(u32_at(t + 4))) {
    case BTF_PTR: return 8;
    case BTF_ARRAY: return (uint64_t)u32_at(t + 20) * type_size(b, u32_at(t + 12), depth + 1);
    case BTF_INT: case BTF_STRUCT: case BTF_UNION: case BTF_ENUM: case BTF_ENUM64:
    case BTF_FLOAT: case BTF_DATASEC: return u32_at(t + 8);
    default: return 0;
    }
}

/* The value of __uint(name, N): pointer to an array of N elements. */
static uint32_t uint_member(const struct btf *b, uint32_t type)
{
    const uint8_t *ptr = resolve(b, type), *arr;
    if (!ptr || kind_of(u32_at(ptr + 4)) != BTF_PTR)
        return 0;
    arr = resolve(b, u32_at(ptr + 8));
    return arr && kind_of(u32_at(arr + 4)) == BTF_ARRAY ? u32_at(arr + 20) : 0;
}

static uint32_t pointee_size(const struct btf *b, uint32_t type)
{
    const uint8_t *ptr = resolve(b, type);
    if (!ptr || kind_of(u32_at(ptr + 4)) != BTF_PTR)
        return 0;
    return (uint32_t)type_size(b, u32_at(ptr + 8), 0);
}

static int read_struct(const struct btf *b, const uint8_t *st, fovm_map_info *info)
{
    uint32_t i, n = vlen_of(u32_at(st + 4));
    for (i = 0; i < n; i++) {
        const uint8_t *mb = st + 12 + 12 * i;
        const char *name = str_at(b, u32_at(mb));
        uint32_t type = u32_at(mb + 4);
        if (fovm_streq(name, "type"))
            info->type = uint_member(b, type);
        else if (fovm_streq(name, "max_entries"))
            info->max_entries = uint_member(b, type);
        else if (fovm_streq(name, "key_size"))
            info->key_size = uint_member(b, type);
        else if (fovm_streq(name, "value_size"))
            info->value_size = uint_member(b, type);
        else if (fovm_streq(name, "key"))
            info->key_size = pointee_size(b, type);
        else if (fovm_streq(name, "value"))
            info->value_size = pointee_size(b, type);
    }
    return 0;
}

int fovm_btf_map_def(const uint8_t *btf, size_t len, const char *name, fovm_map_info *info,
                     fovm_error *err)
{
    struct btf b;
    uint32_t hdr, off = 0, id = 1;
    if (!btf || len < 24 || btf[0] != 0x9f || btf[1] != 0xeb)
        return fovm_fail(err, FOVM_E_ELF, -1, "map %s: no BTF (compile with -g)", name);
    hdr = u32_at(btf + 4);
    if ((uint64_t)hdr + u32_at(btf + 8) + u32_at(btf + 12) > len ||
        (uint64_t)hdr + u32_at(btf + 16) + u32_at(btf + 20) > len)
        return fovm_fail(err, FOVM_E_ELF, -1, "malformed BTF header");
    b.types = btf + hdr + u32_at(btf + 8);
    b.types_len = u32_at(btf + 12);
    b.strs = btf + hdr + u32_at(btf + 16);
    b.strs_len = u32_at(btf + 20);
    while (off + 12 <= b.types_len) {
        const uint8_t *t = b.types + off;
        uint32_t inf = u32_at(t + 4), elen = extra_len(inf);
        if (off + 12 + elen > b.types_len)
            break;
        if (kind_of(inf) == BTF_VAR && fovm_streq(str_at(&b, u32_at(t)), name)) {
            const uint8_t *st = resolve(&b, u32_at(t + 8));
            if (st && kind_of(u32_at(st + 4)) == BTF_STRUCT)
                return read_struct(&b, st, info);
        }
        off += 12 + elen;
        id++;
    }
    return fovm_fail(err, FOVM_E_ELF, -1, "map %s: no BTF definition in .maps", name);
}
