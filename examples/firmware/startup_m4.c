/*
 * Minimal Cortex-M4 start-up: vector table, .data copy, .bss clear, then the firmware loop.
 * Memory layout in m4.ld (1 MiB flash at 0x08000000, 128 KiB RAM at 0x20000000).
 */
#include <stdint.h>

int firmware_main(int with_policy);

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

__attribute__((no_instrument_function, noreturn)) void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    firmware_main(1);
    for (;;) {
    }
}

__attribute__((no_instrument_function)) void Default_Handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
