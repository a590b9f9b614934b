/*
 * Output, command line and exit through Arm semihosting (a debugger, or qemu-system-arm with
 * -semihosting-config enable=on,target=native, serves the calls): newlib's stdio writes
 * through _write, exit() ends in _exit. The console is opened as ":tt", as the Arm
 * semihosting specification defines; stdin/stdout/stderr are character devices (line
 * buffered), so output made before a fault is not lost.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023
#define OPEN_MODE_W 4

static int semihost_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static int console = -1;

int _write(int fd, const char *buf, int len)
{
    uint32_t args[3];

    (void)fd; /* stdout and stderr both go to the console */
    if (console < 0) {
        static const char tt[] = ":tt";
        uint32_t open_args[3] = {(uint32_t)(uintptr_t)tt, OPEN_MODE_W, sizeof(tt) - 1};
        console = semihost_call(SYS_OPEN, open_args);
        if (console < 0)
            return -1;
    }
    args[0] = (uint32_t)console;
    args[1] = (uint32_t)(uintptr_t)buf;
    args[2] = (uint32_t)len;
    /* SYS_WRITE answers how many bytes were NOT written */
    return len - semihost_call(SYS_WRITE, args);
}

/* The command line the host passes (qemu: the -kernel file name, then -append's text), or ""
 * when it passes none. */
const char *semihost_cmdline(void)
{
    static char line[128];
    uint32_t args[2] = {(uint32_t)(uintptr_t)line, sizeof(line)};

    if (semihost_call(SYS_GET_CMDLINE, args) != 0)
        line[0] = 0;
    return line;
}

int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

int _fstat(int fd, struct stat *st)
{
    if (fd < 0 || fd > 2)
        return -1;
    st->st_mode = S_IFCHR;
    return 0;
}

__attribute__((noreturn)) void semihost_exit(int status)
{
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    /* the extended call carries the status; a host without it ends the run on SYS_EXIT
     * (whose AArch32 form takes the reason itself: the status becomes 0 or 1) */
    semihost_call(SYS_EXIT_EXTENDED, args);
    semihost_call(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                                   : ADP_STOPPED_RUN_TIME_ERROR));
    for (;;) {
    }
}

__attribute__((noreturn)) void _exit(int status)
{
    semihost_exit(status);
}
