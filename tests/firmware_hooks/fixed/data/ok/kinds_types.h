/* A header of kinds.c: a function defined here is not kinds.c's and is never hooked there. */
enum mode { MODE_SLOW, MODE_FAST };

static inline int header_helper(int x)
{
    return x;
}
