/* qslab-pqc: the firmware's ML-KEM / ML-DSA (firmware/core/pqc) on the host, one request per stdin line,
 * one answer per stdout line. Used by `qslab pqc kat` (ACVP vectors) and the interop tests against
 * @noble/post-quantum; the node itself links the same objects.
 *
 * Request:  <cmd> <arg> <arg> ...        arguments are hex strings ("-" = empty) or decimal parameters
 * Answer:   ok <hex> <hex> ...           or   err <CODE> <message>
 *
 * The command families live in pqc_cli_kem.c (kem.*) and pqc_cli_dsa.c (dsa.*). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pqc_cli.h"

#define MAX_LINE (8u * 1024u * 1024u)   /* ACVP messages go up to 64 KiB; leave room */
#define MAX_ARGS 16

int cli_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    if (strcmp(s, "-") == 0) { *len = 0; return 0; }
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

void cli_put_hex(FILE *out, const uint8_t *b, size_t n)
{
    static const char h[] = "0123456789abcdef";
    fputc(' ', out);
    if (n == 0) { fputc('-', out); return; }
    for (size_t i = 0; i < n; i++) { fputc(h[b[i] >> 4], out); fputc(h[b[i] & 15], out); }
}

int main(void)
{
    char *line = malloc(MAX_LINE);
    if (!line) return 1;
    while (fgets(line, (int)MAX_LINE, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = '\0';
        if (n && line[n - 1] == '\r') line[--n] = '\0';
        char *argv[MAX_ARGS];
        int argc = 0;
        for (char *tok = strtok(line, " "); tok && argc < MAX_ARGS; tok = strtok(NULL, " ")) argv[argc++] = tok;
        if (argc == 0) continue;
        int handled;
        if (strncmp(argv[0], "kem.", 4) == 0) handled = pqc_cli_kem(argc, argv, stdout);
        else if (strncmp(argv[0], "dsa.", 4) == 0) handled = pqc_cli_dsa(argc, argv, stdout);
        else if (strcmp(argv[0], "ping") == 0) { fputs("ok", stdout); handled = 1; }
        else handled = 0;
        if (!handled) fprintf(stdout, "err E_CMD unknown command %s", argv[0]);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(line);
    return 0;
}
