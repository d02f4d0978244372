/* FIPS 202 (SHA-3 / SHAKE), see fips202.h. Written for qslab from the FIPS 202 specification. */
#include "fips202.h"

#define ROL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

static const uint64_t RC[24] = {
    0x0000000000000001ull, 0x0000000000008082ull, 0x800000000000808Aull, 0x8000000080008000ull,
    0x000000000000808Bull, 0x0000000080000001ull, 0x8000000080008081ull, 0x8000000000008009ull,
    0x000000000000008Aull, 0x0000000000000088ull, 0x0000000080008009ull, 0x000000008000000Aull,
    0x000000008000808Bull, 0x800000000000008Bull, 0x8000000000008089ull, 0x8000000000008003ull,
    0x8000000000008002ull, 0x8000000000000080ull, 0x000000000000800Aull, 0x800000008000000Aull,
    0x8000000080008081ull, 0x8000000000008080ull, 0x0000000080000001ull, 0x8000000080008008ull,
};

/* theta, rho, pi, chi fully unrolled (generated from the FIPS 202 step mappings), iota after. */
void qs_keccak_f1600(uint64_t s[25])
{
    uint64_t A[25];
    uint64_t C0, C1, C2, C3, C4, D0, D1, D2, D3, D4;
    uint64_t B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17, B18, B19, B20, B21,
        B22, B23, B24;
    for (int i = 0; i < 25; i++) A[i] = s[i];
    for (int round = 0; round < 24; round++) {
        C0 = A[0] ^ A[5] ^ A[10] ^ A[15] ^ A[20];
        C1 = A[1] ^ A[6] ^ A[11] ^ A[16] ^ A[21];
        C2 = A[2] ^ A[7] ^ A[12] ^ A[17] ^ A[22];
        C3 = A[3] ^ A[8] ^ A[13] ^ A[18] ^ A[23];
        C4 = A[4] ^ A[9] ^ A[14] ^ A[19] ^ A[24];
        D0 = C4 ^ ROL(C1, 1);
        D1 = C0 ^ ROL(C2, 1);
        D2 = C1 ^ ROL(C3, 1);
        D3 = C2 ^ ROL(C4, 1);
        D4 = C3 ^ ROL(C0, 1);
        B0 = (A[0] ^ D0);
        B1 = ROL(A[6] ^ D1, 44);
        B2 = ROL(A[12] ^ D2, 43);
        B3 = ROL(A[18] ^ D3, 21);
        B4 = ROL(A[24] ^ D4, 14);
        B5 = ROL(A[3] ^ D3, 28);
        B6 = ROL(A[9] ^ D4, 20);
        B7 = ROL(A[10] ^ D0, 3);
        B8 = ROL(A[16] ^ D1, 45);
        B9 = ROL(A[22] ^ D2, 61);
        B10 = ROL(A[1] ^ D1, 1);
        B11 = ROL(A[7] ^ D2, 6);
        B12 = ROL(A[13] ^ D3, 25);
        B13 = ROL(A[19] ^ D4, 8);
        B14 = ROL(A[20] ^ D0, 18);
        B15 = ROL(A[4] ^ D4, 27);
        B16 = ROL(A[5] ^ D0, 36);
        B17 = ROL(A[11] ^ D1, 10);
        B18 = ROL(A[17] ^ D2, 15);
        B19 = ROL(A[23] ^ D3, 56);
        B20 = ROL(A[2] ^ D2, 62);
        B21 = ROL(A[8] ^ D3, 55);
        B22 = ROL(A[14] ^ D4, 39);
        B23 = ROL(A[15] ^ D0, 41);
        B24 = ROL(A[21] ^ D1, 2);
        A[0] = B0 ^ (~B1 & B2);
        A[1] = B1 ^ (~B2 & B3);
        A[2] = B2 ^ (~B3 & B4);
        A[3] = B3 ^ (~B4 & B0);
        A[4] = B4 ^ (~B0 & B1);
        A[5] = B5 ^ (~B6 & B7);
        A[6] = B6 ^ (~B7 & B8);
        A[7] = B7 ^ (~B8 & B9);
        A[8] = B8 ^ (~B9 & B5);
        A[9] = B9 ^ (~B5 & B6);
        A[10] = B10 ^ (~B11 & B12);
        A[11] = B11 ^ (~B12 & B13);
        A[12] = B12 ^ (~B13 & B14);
        A[13] = B13 ^ (~B14 & B10);
        A[14] = B14 ^ (~B10 & B11);
        A[15] = B15 ^ (~B16 & B17);
        A[16] = B16 ^ (~B17 & B18);
        A[17] = B17 ^ (~B18 & B19);
        A[18] = B18 ^ (~B19 & B15);
        A[19] = B19 ^ (~B15 & B16);
        A[20] = B20 ^ (~B21 & B22);
        A[21] = B21 ^ (~B22 & B23);
        A[22] = B22 ^ (~B23 & B24);
        A[23] = B23 ^ (~B24 & B20);
        A[24] = B24 ^ (~B20 & B21);
        A[0] ^= RC[round];
    }
    for (int i = 0; i < 25; i++) s[i] = A[i];
}

static void init(qs_keccak *k, unsigned rate, uint8_t dsep)
{
    for (int i = 0; i < 25; i++) k->s[i] = 0;
    k->pos = 0;
    k->rate = rate;
    k->dsep = dsep;
    k->squeezing = 0;
}

void qs_shake128_init(qs_keccak *k) { init(k, QS_SHAKE128_RATE, 0x1F); }
void qs_shake256_init(qs_keccak *k) { init(k, QS_SHAKE256_RATE, 0x1F); }
void qs_sha3_256_init(qs_keccak *k) { init(k, QS_SHA3_256_RATE, 0x06); }
void qs_sha3_512_init(qs_keccak *k) { init(k, QS_SHA3_512_RATE, 0x06); }

static uint64_t load64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void store64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void qs_keccak_absorb(qs_keccak *k, const uint8_t *in, size_t len)
{
    if (k->squeezing) return;
    unsigned pos = k->pos;
    while (len > 0) {
        if ((pos & 7u) == 0 && len >= 8) {   /* whole lanes */
            while (len >= 8 && pos < k->rate) {
                k->s[pos >> 3] ^= load64(in);
                in += 8; len -= 8; pos += 8;
            }
        } else {
            k->s[pos >> 3] ^= (uint64_t)*in << (8 * (pos & 7u));
            in++; len--; pos++;
        }
        if (pos == k->rate) {
            qs_keccak_f1600(k->s);
            pos = 0;
        }
    }
    k->pos = pos;
}

static void finalize(qs_keccak *k)
{
    k->s[k->pos >> 3] ^= (uint64_t)k->dsep << (8 * (k->pos & 7u));
    k->s[(k->rate - 1) >> 3] ^= (uint64_t)0x80 << (8 * ((k->rate - 1) & 7u));
    qs_keccak_f1600(k->s);
    k->pos = 0;
    k->squeezing = 1;
}

void qs_keccak_squeeze(qs_keccak *k, uint8_t *out, size_t len)
{
    if (!k->squeezing) finalize(k);
    unsigned pos = k->pos;
    while (len > 0) {
        if (pos == k->rate) {
            qs_keccak_f1600(k->s);
            pos = 0;
        }
        if ((pos & 7u) == 0 && len >= 8) {
            while (len >= 8 && pos < k->rate) {
                store64(out, k->s[pos >> 3]);
                out += 8; len -= 8; pos += 8;
            }
        } else {
            *out = (uint8_t)(k->s[pos >> 3] >> (8 * (pos & 7u)));
            out++; len--; pos++;
        }
    }
    k->pos = pos;
}

void qs_sha3_256(uint8_t out[32], const uint8_t *in, size_t len)
{
    qs_keccak k;
    qs_sha3_256_init(&k);
    qs_keccak_absorb(&k, in, len);
    qs_keccak_squeeze(&k, out, 32);
    qs_pqc_wipe(&k, sizeof k);
}

void qs_sha3_512(uint8_t out[64], const uint8_t *in, size_t len)
{
    qs_keccak k;
    qs_sha3_512_init(&k);
    qs_keccak_absorb(&k, in, len);
    qs_keccak_squeeze(&k, out, 64);
    qs_pqc_wipe(&k, sizeof k);
}

void qs_shake128(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen)
{
    qs_keccak k;
    qs_shake128_init(&k);
    qs_keccak_absorb(&k, in, inlen);
    qs_keccak_squeeze(&k, out, outlen);
    qs_pqc_wipe(&k, sizeof k);
}

void qs_shake256(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen)
{
    qs_keccak k;
    qs_shake256_init(&k);
    qs_keccak_absorb(&k, in, inlen);
    qs_keccak_squeeze(&k, out, outlen);
    qs_pqc_wipe(&k, sizeof k);
}

void qs_pqc_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--) *v++ = 0;
}
