#include "fovm_int.h"
int fovm_load_elf(fovm_vm *vm, const void *elf, size_t len, const char *section, fovm_error *err)
{ (void)vm; (void)elf; (void)len; (void)section; return fovm_fail(err, FOVM_E_ELF, -1, "todo"); }
int fovm_elf_program_section(const void *elf, size_t len, size_t index, char *name, size_t name_len, fovm_error *err)
{ (void)elf; (void)len; (void)index; (void)name; (void)name_len; return fovm_fail(err, FOVM_E_ELF, -1, "todo"); }
