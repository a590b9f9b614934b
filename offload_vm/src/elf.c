/* ELF64 parsing: headers, sections, symbols, all bounds-checked (the input is untrusted). */
#include "elf.h"

#define EM_BPF 247

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; fovm_copy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; fovm_copy(&v, p, 8); return v; }

static int starts(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static void read_shdr(const uint8_t *p, struct fovm_shdr *s)
{
    s->name = rd32(p);
    s->type = rd32(p + 4);
    s->flags = rd64(p + 8);
    s->addr = rd64(p + 16);
    s->offset = rd64(p + 24);
    s->size = rd64(p + 32);
    s->link = rd32(p + 40);
    s->info = rd32(p + 44);
    s->addralign = rd64(p + 48);
    s->entsize = rd64(p + 56);
}

static int check_sections(struct fovm_elf *e)
{
    uint32_t i;
    for (i = 0; i < e->nsec; i++) {
        const struct fovm_shdr *s = &e->sec[i];
        if (s->type != SHT_NOBITS && (s->offset > e->len || s->size > e->len - s->offset))
            return fovm_fail(e->err, FOVM_E_ELF, -1, "section %u lies outside the file", i);
        e->map_of_sec[i] = -1;
    }
    if (e->shstr >= e->nsec || e->sec[e->shstr].type != SHT_STRTAB)
        return fovm_fail(e->err, FOVM_E_ELF, -1, "no section name table");
    for (i = 0; i < e->nsec; i++) {
        const char *name = fovm_elf_secname(e, i);
        const struct fovm_shdr *s = &e->sec[i];
        if (s->type == SHT_NOBITS) {
            continue; /* no bytes in the file: only .bss may be one */
        } else if (s->type == SHT_SYMTAB) {
            e->symtab = i;
            e->strtab = s->link;
        } else if (fovm_streq(name, ".text")) {
            e->text = i;
        } else if (fovm_streq(name, ".maps")) {
            e->maps_btf = i;
        } else if (fovm_streq(name, "maps")) {
            e->maps_legacy = i;
        } else if (fovm_streq(name, ".BTF")) {
            e->btf = i;
        }
    }
    if (!e->symtab || e->strtab >= e->nsec || e->sec[e->symtab].entsize != 24)
        return fovm_fail(e->err, FOVM_E_ELF, -1, "no symbol table");
    return 0;
}

int fovm_elf_open(struct fovm_elf *e, const void *data, size_t len, fovm_error *err)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t shoff;
    uint32_t i, shentsize;
    fovm_zero(e, sizeof *e);
    e->data = p;
    e->len = len;
    e->err = err;
    if (!p || len < 64 || p[0] != 0x7f || p[1] != 'E' || p[2] != 'L' || p[3] != 'F')
        return fovm_fail(err, FOVM_E_ELF, -1, "not an ELF file");
    if (p[4] != 2 || p[5] != 1 || rd16(p + 18) != EM_BPF)
        return fovm_fail(err, FOVM_E_ELF, -1,
                         "not a little-endian 64-bit eBPF object (class %u, data %u, "
                         "machine %u; clang -target bpf makes one)",
                         p[4], p[5], rd16(p + 18));
    shoff = rd64(p + 40);
    shentsize = rd16(p + 58);
    e->nsec = rd16(p + 60);
    e->shstr = rd16(p + 62);
    if (shentsize != 64 || e->nsec == 0 || e->nsec > FOVM_ELF_MAX_SECTIONS || shoff > len ||
        (uint64_t)e->nsec * 64 > len - shoff)
        return fovm_fail(err, FOVM_E_ELF, -1, "bad section header table (%u sections)",
                         e->nsec);
    for (i = 0; i < e->nsec; i++)
        read_shdr(p + shoff + (uint64_t)i * 64, &e->sec[i]);
    return check_sections(e);
}

static const char *str_in(const struct fovm_elf *e, uint32_t sec, uint32_t off)
{
    const struct fovm_shdr *s;
    uint64_t i;
    if (sec >= e->nsec)
        return "";
    s = &e->sec[sec];
    if (s->type == SHT_NOBITS || off >= s->size)
        return "";
    for (i = off; i < s->size; i++)
        if (!e->data[s->offset + i])
            return (const char *)e->data + s->offset + off;
    return "";
}

const char *fovm_elf_secname(const struct fovm_elf *e, uint32_t i)
{
    return i < e->nsec ? str_in(e, e->shstr, e->sec[i].name) : "";
}

uint32_t fovm_elf_nsyms(const struct fovm_elf *e) { return (uint32_t)(e->sec[e->symtab].size / 24); }

int fovm_elf_sym(const struct fovm_elf *e, uint32_t i, struct fovm_sym *s)
{
    const uint8_t *p;
    if (i >= fovm_elf_nsyms(e) || !e->symtab)
        return fovm_fail(e->err, FOVM_E_ELF, -1, "symbol %u does not exist", i);
    p = e->data + e->sec[e->symtab].offset + (uint64_t)i * 24;
    s->name = rd32(p);
    s->info = p[4];
    s->other = p[5];
    s->shndx = rd16(p + 6);
    s->value = rd64(p + 8);
    s->size = rd64(p + 16);
    return 0;
}

const char *fovm_elf_symname(const struct fovm_elf *e, const struct fovm_sym *s)
{
    if ((s->info & 0xf) == 3 /* STT_SECTION */)
        return fovm_elf_secname(e, s->shndx);
    return str_in(e, e->strtab, s->name);
}

int fovm_elf_is_prog(const struct fovm_elf *e, uint32_t i)
{
    const struct fovm_shdr *s = &e->sec[i];
    return s->type == SHT_PROGBITS && (s->flags & SHF_EXECINSTR) && s->size >= 8 &&
           i != e->text;
}

int fovm_elf_is_data(const struct fovm_elf *e, uint32_t i)
{
    const char *n = fovm_elf_secname(e, i);
    const struct fovm_shdr *s = &e->sec[i];
    return (s->type == SHT_PROGBITS || s->type == SHT_NOBITS) && (s->flags & SHF_ALLOC) &&
           !(s->flags & SHF_EXECINSTR) && s->size > 0 &&
           (starts(n, ".rodata") || starts(n, ".data") || starts(n, ".bss"));
}

int fovm_elf_program_section(const void *elf, size_t len, size_t index, char *name,
                             size_t name_len, fovm_error *err)
{
    struct fovm_elf e;
    uint32_t i;
    size_t n = 0;
    int rc;
    if ((rc = fovm_elf_open(&e, elf, len, err)) != 0)
        return rc;
    for (i = 0; i < e.nsec; i++) {
        if (!fovm_elf_is_prog(&e, i))
            continue;
        if (n++ == index) {
            fovm_strlcpy(name, fovm_elf_secname(&e, i), name_len);
            return FOVM_OK;
        }
    }
    return fovm_fail(err, FOVM_E_NOENT, -1, "no program section %u", (unsigned)index);
}
