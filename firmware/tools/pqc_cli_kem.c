/* qslab-pqc: kem.* commands (see pqc_cli.c). */
#include "pqc_cli.h"

int pqc_cli_kem(int argc, char **argv, FILE *out)
{
    (void)argc; (void)argv; (void)out;
    return 0;   /* no kem.* commands yet: the dispatcher answers E_CMD */
}
