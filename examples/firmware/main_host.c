/* Host entry point: `firmware` runs with the policy, `firmware --no-policy` without it. */
#include <string.h>

int firmware_main(int with_policy);

int main(int argc, char **argv)
{
    int with_policy = !(argc > 1 && strcmp(argv[1], "--no-policy") == 0);
    return firmware_main(with_policy);
}
