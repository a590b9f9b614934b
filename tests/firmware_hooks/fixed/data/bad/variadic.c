/* HOOK_FUNCTIONS = logf_ */
/* error: bad/variadic.c:5: logf_: variadic functions cannot become hook points */
#include <stdarg.h>

int logf_(const char *fmt, ...)
{
    return fmt[0];
}
