/* HOOK_FUNCTIONS = header_helper */
/* error: HOOK_FUNCTIONS: 'header_helper' is defined in a header (ok/kinds_types.h), not in a listed source; place FO_HOOK_POINT in it by hand */
#include "../ok/kinds_types.h"

int use(int x)
{
    return header_helper(x);
}
