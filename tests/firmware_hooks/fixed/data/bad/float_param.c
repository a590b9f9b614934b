/* HOOK_FUNCTIONS = other scale */
/* error: bad/float_param.c:5: scale: parameter 'factor' has type 'float'; a hook point passes integer and pointer arguments only */
int other(int x) { return x; }

int scale(int x, float factor)
{
    return (int)(x * factor);
}
