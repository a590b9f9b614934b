/* HOOK_FUNCTIONS = make_pair */
/* error: bad/struct_return.c:6: make_pair: returns 'struct pair (int)'; a hook point can drop a call only of a function returning void, an integer or a pointer */
struct pair { int a, b; };


struct pair make_pair(int a)
{
    struct pair p = {a, a};
    return p;
}
