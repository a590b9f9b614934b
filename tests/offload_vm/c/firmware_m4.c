/* A firmware-shaped user of the VM for Cortex-M4 (freestanding, no libc): the VM lives in a
 * static arena, runs a program and returns r0. Linked with -nostdlib to prove that the core
 * needs nothing but libgcc. */
#include "fovm.h"

static unsigned long long arena[2048]; /* 16 KiB */

/* r0 = 0; loop r1 = 10 down to 1 adding into r0; exit  (= 55) */
static const unsigned long long program[] = {
    0x00000000000000b7ull, /* mov r0, 0 */
    0x0000000a000001b7ull, /* mov r1, 10 */
    0x000000000000100full, /* add r0, r1 */
    0xffffffff00000107ull, /* add r1, -1 */
    0x00000000fffd0155ull, /* jne r1, 0, -3 */
    0x0000000000000095ull, /* exit */
};

int fw_main(void)
{
    fovm_error err;
    unsigned long long r0 = 0;
    fovm_vm *vm = fovm_create_in(arena, sizeof arena, &err);
    if (!vm || fovm_load(vm, program, sizeof program, &err) != FOVM_OK)
        return -1;
    if (fovm_exec(vm, 0, 0, &r0, &err) != FOVM_OK)
        return -2;
    return (int)r0;
}
