/* Links the compiled policy object into the firmware image (read-only data). POLICY_OBJ is
 * the path of policy.o, given by the Makefile. */
    .section .rodata.fohook_policy, "a"
    .balign 8
    .global fohook_policy_elf
    .global fohook_policy_elf_end
fohook_policy_elf:
    .incbin POLICY_OBJ
fohook_policy_elf_end:
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack, "", %progbits
#endif
