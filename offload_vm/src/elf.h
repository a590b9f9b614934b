/* ELF64 reading for clang `-target bpf` objects (elf.c, link.c). */
#ifndef FOVM_ELF_H
#define FOVM_ELF_H

#include "fovm_int.h"

#define FOVM_ELF_MAX_SECTIONS 128

struct fovm_shdr {
    uint32_t name, type;
    uint64_t flags, addr, offset, size;
    uint32_t link, info;
    uint64_t addralign, entsize;
};

struct fovm_sym {
    uint32_t name;
    uint8_t info, other;
    uint16_t shndx;
    uint64_t value, size;
};

struct fovm_elf {
    const uint8_t *data;
    size_t len;
    uint32_t nsec;
    uint32_t shstr, symtab, strtab, text, maps_btf, maps_legacy, btf;
    struct fovm_shdr sec[FOVM_ELF_MAX_SECTIONS];
    int map_of_sec[FOVM_ELF_MAX_SECTIONS]; /* data sections: their map index, else -1 */
    uint32_t map_sec[FOVM_MAX_MAPS];        /* .maps/maps symbols: section and offset */
    uint64_t map_off[FOVM_MAX_MAPS];
    fovm_error *err;
};

#define SHT_PROGBITS 1
#define SHT_SYMTAB 2
#define SHT_STRTAB 3
#define SHT_NOBITS 8
#define SHT_REL 9
#define SHF_WRITE 0x1
#define SHF_ALLOC 0x2
#define SHF_EXECINSTR 0x4

FOVM_INTERNAL int fovm_elf_open(struct fovm_elf *e, const void *data, size_t len,
                                fovm_error *err);
FOVM_INTERNAL const char *fovm_elf_secname(const struct fovm_elf *e, uint32_t i);
FOVM_INTERNAL const char *fovm_elf_symname(const struct fovm_elf *e, const struct fovm_sym *s);
FOVM_INTERNAL int fovm_elf_sym(const struct fovm_elf *e, uint32_t i, struct fovm_sym *s);
FOVM_INTERNAL uint32_t fovm_elf_nsyms(const struct fovm_elf *e);
FOVM_INTERNAL int fovm_elf_is_prog(const struct fovm_elf *e, uint32_t i);
FOVM_INTERNAL int fovm_elf_is_data(const struct fovm_elf *e, uint32_t i);

#endif /* FOVM_ELF_H */
