/*
 * Minimal Cortex-M4 start-up: vector table, .data copy, .bss clear, then the firmware loop (with
 * the policy unless the command line says --no-policy) and exit(), which flushes stdio and leaves through semihosting (semihost_m4.c). A fault exits
 * with status 1 instead of hanging. Memory layout in m4.ld (Arm MPS2 AN386, as qemu-system-arm
 * -M mps2-an386 models it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int firmware_main(int with_policy);
void semihost_exit(int status) __attribute__((noreturn));
const char *semihost_cmdline(void);

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

__attribute__((noreturn)) void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    /* as on the host: `--no-policy` (qemu: -append --no-policy) runs as if unhooked */
    exit(firmware_main(strstr(semihost_cmdline(), "--no-policy") == NULL));
}

/* NMI, HardFault, MemManage, BusFault, UsageFault, SVC, PendSV, SysTick: none is expected. */
__attribute__((noreturn)) void Default_Handler(void)
{
    semihost_exit(1);
}

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
