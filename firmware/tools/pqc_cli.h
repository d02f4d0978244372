/* Shared helpers of the qslab-pqc host tool (see pqc_cli.c). */
#ifndef QS_PQC_CLI_H
#define QS_PQC_CLI_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses hex ("-" = empty) into out[cap]; 0 or -1. */
int cli_hex(const char *s, uint8_t *out, size_t cap, size_t *len);
/* Writes " <hex>" (or " -" when n == 0). */
void cli_put_hex(FILE *out, const uint8_t *b, size_t n);

/* Each returns 1 when it handled argv[0] (having written "ok ..." or "err CODE msg" without newline), 0 when the
 * command is not theirs. */
int pqc_cli_kem(int argc, char **argv, FILE *out);
int pqc_cli_dsa(int argc, char **argv, FILE *out);
#endif
