/* Loading a program section of an ELF object: maps from `.maps` (BTF), `maps` (legacy) and
 * data sections, then the program with `.text` (subprograms) appended and relocated. */
#include "elf.h"

static int add_map(struct fovm_elf *e, struct fovm_vm *vm, fovm_map_info *info,
                   struct fovm_map **out)
{
    uint32_t i;
    for (i = 0; i < vm->nmaps; i++)
        if (fovm_streq(vm->maps[i]->info.name, info->name))
            return fovm_fail(e->err, FOVM_E_ELF, -1, "two maps are named %s", info->name);
    *out = fovm_map_new(vm, info, FOVM_TAG_MAPS, e->err);
    return *out ? 0 : (e->err ? e->err->code : FOVM_E_INVAL);
}

static int data_maps(struct fovm_elf *e, struct fovm_vm *vm)
{
    uint32_t i;
    for (i = 0; i < e->nsec; i++) {
        const struct fovm_shdr *s = &e->sec[i];
        fovm_map_info info;
        struct fovm_map *m;
        int rc;
        if (!fovm_elf_is_data(e, i))
            continue;
        fovm_zero(&info, sizeof info);
        fovm_strlcpy(info.name, fovm_elf_secname(e, i), sizeof info.name);
        info.type = FOVM_MAP_ARRAY;
        info.key_size = 4;
        info.value_size = (uint32_t)s->size;
        info.max_entries = 1;
        if (s->size > (1u << 20))
            return fovm_fail(e->err, FOVM_E_ELF, -1, "section %s is over 1 MiB", info.name);
        if ((rc = add_map(e, vm, &info, &m)) != 0)
            return rc;
        if (s->type != SHT_NOBITS)
            fovm_copy(fovm_map_value_ptr(m, 0), e->data + s->offset, (size_t)s->size);
        m->readonly = !(s->flags & SHF_WRITE);
        e->map_of_sec[i] = (int)(vm->nmaps - 1);
    }
    return 0;
}

static int legacy_def(struct fovm_elf *e, const struct fovm_sym *sym, fovm_map_info *info)
{
    const struct fovm_shdr *s = &e->sec[e->maps_legacy];
    uint32_t f[4];
    if (sym->value > s->size || s->size - sym->value < 16)
        return fovm_fail(e->err, FOVM_E_ELF, -1, "map %s: definition outside section maps",
                         info->name);
    fovm_copy(f, e->data + s->offset + sym->value, 16);
    info->type = f[0];
    info->key_size = f[1];
    info->value_size = f[2];
    info->max_entries = f[3];
    return 0;
}

static int symbol_maps(struct fovm_elf *e, struct fovm_vm *vm)
{
    uint32_t i, n = fovm_elf_nsyms(e);
    for (i = 1; i < n; i++) {
        struct fovm_sym sym;
        fovm_map_info info;
        struct fovm_map *m;
        int rc;
        if ((rc = fovm_elf_sym(e, i, &sym)) != 0)
            return rc;
        if ((sym.info & 0xf) != 1 /* STT_OBJECT */ || !sym.shndx ||
            (sym.shndx != e->maps_btf && sym.shndx != e->maps_legacy))
            continue;
        fovm_zero(&info, sizeof info);
        fovm_strlcpy(info.name, fovm_elf_symname(e, &sym), sizeof info.name);
        if (sym.shndx == e->maps_btf)
            rc = fovm_btf_map_def(e->btf ? e->data + e->sec[e->btf].offset : NULL,
                                  e->btf ? (size_t)e->sec[e->btf].size : 0, info.name, &info,
                                  e->err);
        else
            rc = legacy_def(e, &sym, &info);
        if (rc || (rc = add_map(e, vm, &info, &m)) != 0)
            return rc;
        e->map_sec[vm->nmaps - 1] = sym.shndx;
        e->map_off[vm->nmaps - 1] = sym.value;
    }
    return 0;
}

static int reloc_lddw(struct fovm_elf *e, struct fovm_vm *vm, struct ebpf_insn *in,
                      const struct fovm_sym *sym, uint32_t idx)
{
    uint32_t m;
    for (m = 0; m < vm->nmaps; m++) {
        if (e->map_sec[m] == sym->shndx && e->map_off[m] == sym->value && sym->shndx &&
            e->map_of_sec[sym->shndx] < 0) {
            in->regs = (uint8_t)((in->regs & 0x0f) | (EBPF_PSEUDO_MAP_FD << 4));
            in->imm = (int32_t)m;
            return 0;
        }
    }
    if (sym->shndx && sym->shndx < e->nsec && e->map_of_sec[sym->shndx] >= 0) {
        in[1].imm = in->imm + (int32_t)sym->value;
        in->regs = (uint8_t)((in->regs & 0x0f) | (EBPF_PSEUDO_MAP_VALUE << 4));
        in->imm = e->map_of_sec[sym->shndx];
        return 0;
    }
    return fovm_fail(e->err, FOVM_E_ELF, (int)idx,
                     "instruction %u loads the address of %s, which is not a map or a global",
                     idx, fovm_elf_symname(e, sym));
}

/* Applies the relocations of section `sec`, whose instructions start at `base`. */
static int relocate(struct fovm_elf *e, struct fovm_vm *vm, struct ebpf_insn *insns,
                    uint32_t total, uint32_t sec, uint32_t base, uint32_t prog, uint32_t np)
{
    uint32_t r, k, count = (uint32_t)(e->sec[sec].size / 8);
    for (r = 0; r < e->nsec; r++) {
        const struct fovm_shdr *rs = &e->sec[r];
        if (rs->type != SHT_REL || rs->info != sec)
            continue;
        for (k = 0; k < rs->size / 16; k++) {
            const uint8_t *p = e->data + rs->offset + (uint64_t)k * 16;
            uint64_t off, info;
            struct fovm_sym sym;
            struct ebpf_insn *in;
            uint32_t idx;
            int rc;
            fovm_copy(&off, p, 8);
            fovm_copy(&info, p + 8, 8);
            idx = (uint32_t)(off / 8);
            if (off % 8 || idx >= count || (rc = fovm_elf_sym(e, (uint32_t)(info >> 32), &sym)))
                return fovm_fail(e->err, FOVM_E_ELF, -1, "bad relocation %u of section %s", k,
                                 fovm_elf_secname(e, sec));
            in = &insns[base + idx];
            if (in->code == EBPF_OP_LDDW && base + idx + 1 < total) {
                if ((rc = reloc_lddw(e, vm, in, &sym, base + idx)) != 0)
                    return rc;
            } else if (in->code == EBPF_OP_CALL && EBPF_SRC(in) == EBPF_PSEUDO_CALL &&
                       (sym.shndx == e->text || sym.shndx == prog)) {
                int64_t t = (sym.shndx == prog ? 0 : np) + (int64_t)(sym.value / 8) + in->imm + 1;
                in->imm = (int32_t)(t - (int64_t)(base + idx + 1));
            } else {
                return fovm_fail(e->err, FOVM_E_ELF, (int)(base + idx),
                                 "unsupported relocation against %s at instruction %u",
                                 fovm_elf_symname(e, &sym), base + idx);
            }
        }
    }
    return 0;
}

static int find_prog(struct fovm_elf *e, const char *section, uint32_t *out)
{
    uint32_t i;
    for (i = 0; i < e->nsec; i++) {
        if (!fovm_elf_is_prog(e, i))
            continue;
        if (!section || fovm_streq(fovm_elf_secname(e, i), section)) {
            *out = i;
            return 0;
        }
    }
    if (section)
        return fovm_fail(e->err, FOVM_E_NOENT, -1, "no program section named %s", section);
    return fovm_fail(e->err, FOVM_E_NOENT, -1, "the object has no program section");
}

int fovm_load_elf(fovm_vm *vm, const void *elf, size_t len, const char *section,
                  fovm_error *err)
{
    struct fovm_elf *e;
    struct ebpf_insn *insns;
    uint32_t prog = 0, np, nt, i;
    int rc;
    if (!vm || !elf)
        return fovm_fail(err, FOVM_E_INVAL, -1, "no vm or no object");
    fovm_release(vm, FOVM_TAG_MAPS);
    e = (struct fovm_elf *)fovm_alloc(vm, sizeof *e, FOVM_TAG_PROG);
    if (!e)
        return fovm_fail(err, FOVM_E_NOMEM, -1, "no memory to read the object");
    if ((rc = fovm_elf_open(e, elf, len, err)) != 0 || (rc = find_prog(e, section, &prog)) != 0)
        goto fail;
    for (i = 0; i < FOVM_MAX_MAPS; i++)
        e->map_sec[i] = 0;
    if ((rc = data_maps(e, vm)) != 0 || (rc = symbol_maps(e, vm)) != 0)
        goto fail;
    np = (uint32_t)(e->sec[prog].size / 8);
    nt = e->text ? (uint32_t)(e->sec[e->text].size / 8) : 0;
    if ((uint64_t)np + nt > FOVM_MAX_INSNS) {
        rc = fovm_fail(err, FOVM_E_REJECTED, -1, "program of %u instructions exceeds %u",
                       np + nt, FOVM_MAX_INSNS);
        goto fail;
    }
    insns = (struct ebpf_insn *)fovm_alloc(vm, (size_t)(np + nt) * 8, FOVM_TAG_PROG);
    if (!insns) {
        rc = fovm_fail(err, FOVM_E_NOMEM, -1, "no memory for %u instructions", np + nt);
        goto fail;
    }
    fovm_copy(insns, e->data + e->sec[prog].offset, (size_t)np * 8);
    if (nt)
        fovm_copy(insns + np, e->data + e->sec[e->text].offset, (size_t)nt * 8);
    if ((rc = relocate(e, vm, insns, np + nt, prog, 0, prog, np)) != 0 ||
        (nt && (rc = relocate(e, vm, insns, np + nt, e->text, np, prog, np)) != 0) ||
        (rc = fovm_install(vm, insns, np + nt, err)) != 0)
        goto fail;
    return FOVM_OK;
fail:
    fovm_release(vm, FOVM_TAG_MAPS);
    return rc;
}
