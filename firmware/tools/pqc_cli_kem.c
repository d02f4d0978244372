/* qslab-pqc: kem.* commands (see pqc_cli.c).
 *
 *   kem.keygen   <512|768|1024> <d> <z>   -> ok <ek> <dk>
 *   kem.encaps   <set> <ek> <m>           -> ok <ct> <ss>        (ek failing the modulus check: err E_INPUT)
 *   kem.decaps   <set> <dk> <ct>          -> ok <ss>             (dk failing the hash check: err E_INPUT)
 *   kem.check_ek <set> <ek>               -> ok 1 | ok 0
 *   kem.check_dk <set> <dk>               -> ok 1 | ok 0
 *
 * Wrong argument counts: err E_ARGS; unknown parameter set: err E_PARAM; bad hex or wrong lengths: err E_INPUT.
 * check_ek/check_dk answer "ok 0" for a key of the right length that fails the check, err E_INPUT for a
 * wrong length (FIPS 203 §7: the type check comes first). */
#include <string.h>
#include "pqc_cli.h"
#include "../core/pqc/mlkem.h"

static int set_k(const char *s)
{
    if (strcmp(s, "512") == 0) return 2;
    if (strcmp(s, "768") == 0) return 3;
    if (strcmp(s, "1024") == 0) return 4;
    return 0;
}

/* Parses hex argument `s` that must be exactly `want` bytes long; writes an error answer otherwise. */
static int arg_exact(FILE *out, const char *what, const char *s, uint8_t *buf, size_t cap, size_t want)
{
    size_t n;
    if (cli_hex(s, buf, cap, &n) != 0) {
        fprintf(out, "err E_INPUT %s is not hex of at most %zu bytes", what, cap);
        return -1;
    }
    if (n != want) {
        fprintf(out, "err E_INPUT %s must be %zu bytes, got %zu", what, want, n);
        return -1;
    }
    return 0;
}

int pqc_cli_kem(int argc, char **argv, FILE *out)
{
    static uint8_t ek[QS_MLKEM_EK_MAX + 1], dk[QS_MLKEM_DK_MAX + 1], ct[QS_MLKEM_CT_MAX + 1];
    uint8_t a[33], b[33], ss[32];
    const char *cmd = argv[0];
    int nargs;
    if (strcmp(cmd, "kem.keygen") == 0 || strcmp(cmd, "kem.encaps") == 0 || strcmp(cmd, "kem.decaps") == 0) nargs = 4;
    else if (strcmp(cmd, "kem.check_ek") == 0 || strcmp(cmd, "kem.check_dk") == 0) nargs = 3;
    else return 0;
    if (argc != nargs) {
        fprintf(out, "err E_ARGS %s takes %d arguments", cmd, nargs - 1);
        return 1;
    }
    int k = set_k(argv[1]);
    if (!k) {
        fprintf(out, "err E_PARAM unknown ML-KEM parameter set %s (512, 768 or 1024)", argv[1]);
        return 1;
    }
    const size_t ekn = qs_mlkem_ek_bytes(k), dkn = qs_mlkem_dk_bytes(k), ctn = qs_mlkem_ct_bytes(k);

    if (strcmp(cmd, "kem.keygen") == 0) {
        if (arg_exact(out, "d", argv[2], a, sizeof a, 32) || arg_exact(out, "z", argv[3], b, sizeof b, 32)) return 1;
        if (qs_mlkem_keygen(k, ek, dk, a, b) != QS_PQC_OK) { fputs("err E_INTERNAL keygen failed", out); return 1; }
        fputs("ok", out);
        cli_put_hex(out, ek, ekn);
        cli_put_hex(out, dk, dkn);
    } else if (strcmp(cmd, "kem.encaps") == 0) {
        if (arg_exact(out, "ek", argv[2], ek, sizeof ek, ekn) || arg_exact(out, "m", argv[3], a, sizeof a, 32)) return 1;
        if (qs_mlkem_encaps(k, ct, ss, ek, a) != QS_PQC_OK) {
            fputs("err E_INPUT ek fails the modulus check (FIPS 203 7.2)", out);
            return 1;
        }
        fputs("ok", out);
        cli_put_hex(out, ct, ctn);
        cli_put_hex(out, ss, 32);
    } else if (strcmp(cmd, "kem.decaps") == 0) {
        if (arg_exact(out, "dk", argv[2], dk, sizeof dk, dkn) || arg_exact(out, "ct", argv[3], ct, sizeof ct, ctn)) return 1;
        if (qs_mlkem_decaps(k, ss, ct, dk) != QS_PQC_OK) {
            fputs("err E_INPUT dk fails the hash check (FIPS 203 7.3)", out);
            return 1;
        }
        fputs("ok", out);
        cli_put_hex(out, ss, 32);
    } else if (strcmp(cmd, "kem.check_ek") == 0) {
        if (arg_exact(out, "ek", argv[2], ek, sizeof ek, ekn)) return 1;
        fprintf(out, "ok %d", qs_mlkem_check_ek(k, ek) == QS_PQC_OK);
    } else {
        if (arg_exact(out, "dk", argv[2], dk, sizeof dk, dkn)) return 1;
        fprintf(out, "ok %d", qs_mlkem_check_dk(k, dk) == QS_PQC_OK);
    }
    return 1;
}
