/* qslab-pqc: dsa.* commands (see pqc_cli.c). */
#include "pqc_cli.h"

int pqc_cli_dsa(int argc, char **argv, FILE *out)
{
    (void)argc; (void)argv; (void)out;
    return 0;   /* no dsa.* commands yet: the dispatcher answers E_CMD */
}
