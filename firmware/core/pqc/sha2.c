/* FIPS 180-4 SHA-2 family, portable C11 (see sha2.h). Round constants and initial values are the FIPS 180-4
 * values (fractional parts of square / cube roots of the first primes; SHA-512/t IVs from the FIPS 180-4
 * section 5.3.6 IV generation function). */
#include "sha2.h"
#include "fips202.h"   /* qs_pqc_wipe */

static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u
};

static const uint64_t K512[80] = {
    UINT64_C(0x428a2f98d728ae22), UINT64_C(0x7137449123ef65cd), UINT64_C(0xb5c0fbcfec4d3b2f), UINT64_C(0xe9b5dba58189dbbc),
    UINT64_C(0x3956c25bf348b538), UINT64_C(0x59f111f1b605d019), UINT64_C(0x923f82a4af194f9b), UINT64_C(0xab1c5ed5da6d8118),
    UINT64_C(0xd807aa98a3030242), UINT64_C(0x12835b0145706fbe), UINT64_C(0x243185be4ee4b28c), UINT64_C(0x550c7dc3d5ffb4e2),
    UINT64_C(0x72be5d74f27b896f), UINT64_C(0x80deb1fe3b1696b1), UINT64_C(0x9bdc06a725c71235), UINT64_C(0xc19bf174cf692694),
    UINT64_C(0xe49b69c19ef14ad2), UINT64_C(0xefbe4786384f25e3), UINT64_C(0x0fc19dc68b8cd5b5), UINT64_C(0x240ca1cc77ac9c65),
    UINT64_C(0x2de92c6f592b0275), UINT64_C(0x4a7484aa6ea6e483), UINT64_C(0x5cb0a9dcbd41fbd4), UINT64_C(0x76f988da831153b5),
    UINT64_C(0x983e5152ee66dfab), UINT64_C(0xa831c66d2db43210), UINT64_C(0xb00327c898fb213f), UINT64_C(0xbf597fc7beef0ee4),
    UINT64_C(0xc6e00bf33da88fc2), UINT64_C(0xd5a79147930aa725), UINT64_C(0x06ca6351e003826f), UINT64_C(0x142929670a0e6e70),
    UINT64_C(0x27b70a8546d22ffc), UINT64_C(0x2e1b21385c26c926), UINT64_C(0x4d2c6dfc5ac42aed), UINT64_C(0x53380d139d95b3df),
    UINT64_C(0x650a73548baf63de), UINT64_C(0x766a0abb3c77b2a8), UINT64_C(0x81c2c92e47edaee6), UINT64_C(0x92722c851482353b),
    UINT64_C(0xa2bfe8a14cf10364), UINT64_C(0xa81a664bbc423001), UINT64_C(0xc24b8b70d0f89791), UINT64_C(0xc76c51a30654be30),
    UINT64_C(0xd192e819d6ef5218), UINT64_C(0xd69906245565a910), UINT64_C(0xf40e35855771202a), UINT64_C(0x106aa07032bbd1b8),
    UINT64_C(0x19a4c116b8d2d0c8), UINT64_C(0x1e376c085141ab53), UINT64_C(0x2748774cdf8eeb99), UINT64_C(0x34b0bcb5e19b48a8),
    UINT64_C(0x391c0cb3c5c95a63), UINT64_C(0x4ed8aa4ae3418acb), UINT64_C(0x5b9cca4f7763e373), UINT64_C(0x682e6ff3d6b2b8a3),
    UINT64_C(0x748f82ee5defb2fc), UINT64_C(0x78a5636f43172f60), UINT64_C(0x84c87814a1f0ab72), UINT64_C(0x8cc702081a6439ec),
    UINT64_C(0x90befffa23631e28), UINT64_C(0xa4506cebde82bde9), UINT64_C(0xbef9a3f7b2c67915), UINT64_C(0xc67178f2e372532b),
    UINT64_C(0xca273eceea26619c), UINT64_C(0xd186b8c721c0c207), UINT64_C(0xeada7dd6cde0eb1e), UINT64_C(0xf57d4f7fee6ed178),
    UINT64_C(0x06f067aa72176fba), UINT64_C(0x0a637dc5a2c898a6), UINT64_C(0x113f9804bef90dae), UINT64_C(0x1b710b35131c471b),
    UINT64_C(0x28db77f523047d84), UINT64_C(0x32caab7b40c72493), UINT64_C(0x3c9ebe0a15c9bebc), UINT64_C(0x431d67c49c100d4c),
    UINT64_C(0x4cc5d4becb3e42b6), UINT64_C(0x597f299cfc657e2a), UINT64_C(0x5fcb6fab3ad6faec), UINT64_C(0x6c44198c4a475817)
};

static const uint32_t IV224[8] = {
    0xc1059ed8u, 0x367cd507u, 0x3070dd17u, 0xf70e5939u, 0xffc00b31u, 0x68581511u, 0x64f98fa7u, 0xbefa4fa4u
};
static const uint32_t IV256[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u
};
static const uint64_t IV384[8] = {
    UINT64_C(0xcbbb9d5dc1059ed8), UINT64_C(0x629a292a367cd507), UINT64_C(0x9159015a3070dd17), UINT64_C(0x152fecd8f70e5939),
    UINT64_C(0x67332667ffc00b31), UINT64_C(0x8eb44a8768581511), UINT64_C(0xdb0c2e0d64f98fa7), UINT64_C(0x47b5481dbefa4fa4)
};
static const uint64_t IV512[8] = {
    UINT64_C(0x6a09e667f3bcc908), UINT64_C(0xbb67ae8584caa73b), UINT64_C(0x3c6ef372fe94f82b), UINT64_C(0xa54ff53a5f1d36f1),
    UINT64_C(0x510e527fade682d1), UINT64_C(0x9b05688c2b3e6c1f), UINT64_C(0x1f83d9abfb41bd6b), UINT64_C(0x5be0cd19137e2179)
};
static const uint64_t IV512_224[8] = {
    UINT64_C(0x8c3d37c819544da2), UINT64_C(0x73e1996689dcd4d6), UINT64_C(0x1dfab7ae32ff9c82), UINT64_C(0x679dd514582f9fcf),
    UINT64_C(0x0f6d2b697bd44da8), UINT64_C(0x77e36f7304c48942), UINT64_C(0x3f9d85a86a1d36c8), UINT64_C(0x1112e6ad91d692a1)
};
static const uint64_t IV512_256[8] = {
    UINT64_C(0x22312194fc2bf72c), UINT64_C(0x9f555fa3c84c64c2), UINT64_C(0x2393b86b6f53b151), UINT64_C(0x963877195940eabd),
    UINT64_C(0x96283ee2a88effe3), UINT64_C(0xbe5e1e2553863992), UINT64_C(0x2b0199fc2c85b8aa), UINT64_C(0x0eb72ddc81c52ca2)
};

static uint32_t ror32(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }
static uint64_t ror64(uint64_t x, unsigned n) { return (x >> n) | (x << (64u - n)); }

static uint32_t ld32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t ld64be(const uint8_t *p)
{
    return (uint64_t)ld32be(p) << 32 | ld32be(p + 4);
}

static void block256(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[16], v[8];
    for (int i = 0; i < 16; i++) w[i] = ld32be(p + 4 * i);
    for (int i = 0; i < 8; i++) v[i] = h[i];
    for (int t = 0; t < 64; t++) {
        if (t >= 16) {
            uint32_t a = w[(t - 15) & 15], b = w[(t - 2) & 15];
            uint32_t s0 = ror32(a, 7) ^ ror32(a, 18) ^ (a >> 3);
            uint32_t s1 = ror32(b, 17) ^ ror32(b, 19) ^ (b >> 10);
            w[t & 15] += s0 + s1 + w[(t - 7) & 15];
        }
        uint32_t e = v[4], a = v[0];
        uint32_t t1 = v[7] + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & v[5]) ^ (~e & v[6])) + K256[t] + w[t & 15];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
        v[7] = v[6]; v[6] = v[5]; v[5] = v[4]; v[4] = v[3] + t1;
        v[3] = v[2]; v[2] = v[1]; v[1] = v[0]; v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) h[i] += v[i];
    qs_pqc_wipe(w, sizeof w);
    qs_pqc_wipe(v, sizeof v);
}

static void block512(uint64_t h[8], const uint8_t *p)
{
    uint64_t w[16], v[8];
    for (int i = 0; i < 16; i++) w[i] = ld64be(p + 8 * i);
    for (int i = 0; i < 8; i++) v[i] = h[i];
    for (int t = 0; t < 80; t++) {
        if (t >= 16) {
            uint64_t a = w[(t - 15) & 15], b = w[(t - 2) & 15];
            uint64_t s0 = ror64(a, 1) ^ ror64(a, 8) ^ (a >> 7);
            uint64_t s1 = ror64(b, 19) ^ ror64(b, 61) ^ (b >> 6);
            w[t & 15] += s0 + s1 + w[(t - 7) & 15];
        }
        uint64_t e = v[4], a = v[0];
        uint64_t t1 = v[7] + (ror64(e, 14) ^ ror64(e, 18) ^ ror64(e, 41)) + ((e & v[5]) ^ (~e & v[6])) + K512[t] + w[t & 15];
        uint64_t t2 = (ror64(a, 28) ^ ror64(a, 34) ^ ror64(a, 39)) + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
        v[7] = v[6]; v[6] = v[5]; v[5] = v[4]; v[4] = v[3] + t1;
        v[3] = v[2]; v[2] = v[1]; v[1] = v[0]; v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) h[i] += v[i];
    qs_pqc_wipe(w, sizeof w);
    qs_pqc_wipe(v, sizeof v);
}

static void init256(qs_pqc_sha256_ctx *c, const uint32_t iv[8], unsigned outlen)
{
    for (int i = 0; i < 8; i++) c->h[i] = iv[i];
    c->len = 0;
    c->outlen = outlen;
}

void qs_pqc_sha224_init(qs_pqc_sha256_ctx *c) { init256(c, IV224, 28); }
void qs_pqc_sha256_init(qs_pqc_sha256_ctx *c) { init256(c, IV256, 32); }

void qs_pqc_sha256_update(qs_pqc_sha256_ctx *c, const uint8_t *in, size_t len)
{
    size_t fill = (size_t)(c->len & 63u);
    c->len += len;
    if (fill) {
        size_t n = 64 - fill < len ? 64 - fill : len;
        for (size_t i = 0; i < n; i++) c->buf[fill + i] = in[i];
        in += n; len -= n; fill += n;
        if (fill < 64) return;
        block256(c->h, c->buf);
    }
    for (; len >= 64; in += 64, len -= 64) block256(c->h, in);
    for (size_t i = 0; i < len; i++) c->buf[i] = in[i];
}

void qs_pqc_sha256_final(qs_pqc_sha256_ctx *c, uint8_t *out)
{
    size_t fill = (size_t)(c->len & 63u);
    uint64_t bits = c->len << 3;
    c->buf[fill++] = 0x80;
    if (fill > 56) {
        while (fill < 64) c->buf[fill++] = 0;
        block256(c->h, c->buf);
        fill = 0;
    }
    while (fill < 56) c->buf[fill++] = 0;
    for (int i = 0; i < 8; i++) c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    block256(c->h, c->buf);
    for (unsigned i = 0; i < c->outlen; i++) out[i] = (uint8_t)(c->h[i / 4] >> (24 - 8 * (i % 4)));
    qs_pqc_wipe(c, sizeof *c);
}

static void init512(qs_pqc_sha512_ctx *c, const uint64_t iv[8], unsigned outlen)
{
    for (int i = 0; i < 8; i++) c->h[i] = iv[i];
    c->len = 0;
    c->outlen = outlen;
}

void qs_pqc_sha384_init(qs_pqc_sha512_ctx *c) { init512(c, IV384, 48); }
void qs_pqc_sha512_init(qs_pqc_sha512_ctx *c) { init512(c, IV512, 64); }
void qs_pqc_sha512_224_init(qs_pqc_sha512_ctx *c) { init512(c, IV512_224, 28); }
void qs_pqc_sha512_256_init(qs_pqc_sha512_ctx *c) { init512(c, IV512_256, 32); }

void qs_pqc_sha512_update(qs_pqc_sha512_ctx *c, const uint8_t *in, size_t len)
{
    size_t fill = (size_t)(c->len & 127u);
    c->len += len;
    if (fill) {
        size_t n = 128 - fill < len ? 128 - fill : len;
        for (size_t i = 0; i < n; i++) c->buf[fill + i] = in[i];
        in += n; len -= n; fill += n;
        if (fill < 128) return;
        block512(c->h, c->buf);
    }
    for (; len >= 128; in += 128, len -= 128) block512(c->h, in);
    for (size_t i = 0; i < len; i++) c->buf[i] = in[i];
}

void qs_pqc_sha512_final(qs_pqc_sha512_ctx *c, uint8_t *out)
{
    size_t fill = (size_t)(c->len & 127u);
    uint64_t bits = c->len << 3;
    c->buf[fill++] = 0x80;
    if (fill > 112) {
        while (fill < 128) c->buf[fill++] = 0;
        block512(c->h, c->buf);
        fill = 0;
    }
    while (fill < 120) c->buf[fill++] = 0;   /* 128-bit length: high 64 bits are zero (len < 2^61 bytes) */
    for (int i = 0; i < 8; i++) c->buf[120 + i] = (uint8_t)(bits >> (56 - 8 * i));
    block512(c->h, c->buf);
    for (unsigned i = 0; i < c->outlen; i++) out[i] = (uint8_t)(c->h[i / 8] >> (56 - 8 * (i % 8)));
    qs_pqc_wipe(c, sizeof *c);
}

#define ONESHOT(name, ctx_t, init, update, final)                      \
    void name(uint8_t *out, const uint8_t *in, size_t len)             \
    {                                                                  \
        ctx_t c;                                                       \
        init(&c);                                                      \
        update(&c, in, len);                                           \
        final(&c, out);                                                \
    }
ONESHOT(qs_pqc_sha224, qs_pqc_sha256_ctx, qs_pqc_sha224_init, qs_pqc_sha256_update, qs_pqc_sha256_final)
ONESHOT(qs_pqc_sha256, qs_pqc_sha256_ctx, qs_pqc_sha256_init, qs_pqc_sha256_update, qs_pqc_sha256_final)
ONESHOT(qs_pqc_sha384, qs_pqc_sha512_ctx, qs_pqc_sha384_init, qs_pqc_sha512_update, qs_pqc_sha512_final)
ONESHOT(qs_pqc_sha512, qs_pqc_sha512_ctx, qs_pqc_sha512_init, qs_pqc_sha512_update, qs_pqc_sha512_final)
ONESHOT(qs_pqc_sha512_224, qs_pqc_sha512_ctx, qs_pqc_sha512_224_init, qs_pqc_sha512_update, qs_pqc_sha512_final)
ONESHOT(qs_pqc_sha512_256, qs_pqc_sha512_ctx, qs_pqc_sha512_256_init, qs_pqc_sha512_update, qs_pqc_sha512_final)
