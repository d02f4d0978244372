/* ML-KEM (FIPS 203), see mlkem.h. Written for qslab from the FIPS 203 specification.
 *
 * Arithmetic: coefficients are int16_t mod q = 3329. Multiplications use Montgomery reduction with R = 2^16
 * (fqmul(a, b) = a b R^-1 mod q); the NTT twiddles are stored premultiplied by R, so a butterfly multiplies
 * by the plain twiddle. A base-case product therefore carries a factor R^-1, which the final scaling of the
 * inverse NTT (by R^2 / 128) or an explicit to-Montgomery step (keygen: by R^2) cancels. Reduction is lazy in
 * the forward NTT (|coefficient| < 8q after 7 layers, fits int16) and Barrett after additions elsewhere.
 *
 * All shifts of possibly negative values are avoided (implementation-defined in C11): Montgomery divides an
 * exact multiple of 2^16, Barrett biases its product to be non-negative, sign masks come from unsigned shifts. */
#include "mlkem.h"
#include "fips202.h"

#define N 256
#define Q 3329
#define QINV 62209u          /* q^-1 mod 2^16 */
#define MONT_R2 1353         /* R^2 mod q: fqmul(x, MONT_R2) = x R */
#define INVNTT_F 1441        /* R^2 / 128 mod q: final inverse-NTT scaling, also cancels one R^-1 */
#define BARRETT_V 20159      /* round(2^26 / q) */
#define DIVQ_M 20642679u     /* ceil(2^36 / q): floor(n / q) = (n * DIVQ_M) >> 36 for n < 2^23 */
#define KMAX 4

typedef struct { int16_t c[N]; } poly;

/* zeta^BitRev7(i) * R mod q, centered; zeta = 17. (Table computed from the definition, FIPS 203 §4.3.) */
static const int16_t ZETAS[128] = {
    -1044, -758, -359, -1517, 1493, 1422, 287, 202, -171, 622, 1577, 182, 962, -1202, -1474, 1468,
    573, -1325, 264, 383, -829, 1458, -1602, -130, -681, 1017, 732, 608, -1542, 411, -205, -1571,
    1223, 652, -552, 1015, -1293, 1491, -282, -1544, 516, -8, -320, -666, -1618, -1162, 126, 1469,
    -853, -90, -271, 830, 107, -1421, -247, -951, -398, 961, -1508, -725, 448, -1065, 677, -1275,
    -1103, 430, 555, 843, -1251, 871, 1550, 105, 422, 587, 177, -235, -291, -460, 1574, 1653,
    -246, 778, 1159, -147, -777, 1483, -602, 1119, -1590, 644, -872, 349, 418, 329, -156, -75,
    817, 1097, 603, 610, 1322, -1285, -1465, 384, -1215, -136, 1218, -1335, -874, 220, -1187, -1659,
    -1185, -1530, -1278, 794, -1510, -854, -870, 478, -108, -308, 996, 991, 958, -1460, 1522, 1628,
};

/* gamma_i = zeta^(2 BitRev7(i) + 1) * R mod q, centered: the moduli X^2 - gamma_i of the base-case products. */
static const int16_t GAMMAS[128] = {
    -1103, 1103, 430, -430, 555, -555, 843, -843, -1251, 1251, 871, -871, 1550, -1550, 105, -105,
    422, -422, 587, -587, 177, -177, -235, 235, -291, 291, -460, 460, 1574, -1574, 1653, -1653,
    -246, 246, 778, -778, 1159, -1159, -147, 147, -777, 777, 1483, -1483, -602, 602, 1119, -1119,
    -1590, 1590, 644, -644, -872, 872, 349, -349, 418, -418, 329, -329, -156, 156, -75, 75,
    817, -817, 1097, -1097, 603, -603, 610, -610, 1322, -1322, -1285, 1285, -1465, 1465, 384, -384,
    -1215, 1215, -136, 136, 1218, -1218, -1335, 1335, -874, 874, 220, -220, -1187, 1187, -1659, 1659,
    -1185, 1185, -1530, 1530, -1278, 1278, 794, -794, -1510, 1510, -854, 854, -870, 870, 478, -478,
    -108, 108, -308, 308, 996, -996, 991, -991, 958, -958, -1460, 1460, 1522, -1522, 1628, -1628,
};

/* ---- parameter sets ---------------------------------------------------------------------------------- */

typedef struct { int k, eta1, du, dv; } params;

static int get_params(int k, params *p)
{
    if (k < 2 || k > 4) return QS_PQC_EPARAM;
    p->k = k;
    p->eta1 = k == 2 ? 3 : 2;
    p->du = k == 4 ? 11 : 10;
    p->dv = k == 4 ? 5 : 4;
    return QS_PQC_OK;
}

size_t qs_mlkem_ek_bytes(int k) { return k >= 2 && k <= 4 ? 384u * (size_t)k + 32u : 0; }
size_t qs_mlkem_dk_bytes(int k) { return k >= 2 && k <= 4 ? 768u * (size_t)k + 96u : 0; }
size_t qs_mlkem_ct_bytes(int k)
{
    params p;
    if (get_params(k, &p)) return 0;
    return 32u * (size_t)(p.du * k + p.dv);
}

/* ---- modular arithmetic (branch-free) ----------------------------------------------------------------- */

/* a R^-1 mod q, |result| < q, for |a| < q 2^15. */
static int16_t mont_reduce(int32_t a)
{
    uint32_t u = ((uint32_t)a * QINV) & 0xFFFFu;
    int32_t t = (int32_t)(u & 0x7FFFu) - (int32_t)(u & 0x8000u);   /* low 16 bits of a q^-1, signed */
    return (int16_t)((a - t * Q) / 65536);                             /* exact division */
}

static int16_t fqmul(int16_t a, int16_t b) { return mont_reduce((int32_t)a * b); }

/* Centered representative of a mod q, |result| <= (q-1)/2. */
static int16_t barrett(int16_t a)
{
    /* floor((v a + 2^25) / 2^26), with 10 * 2^26 added so the shifted value is non-negative */
    uint32_t x = (uint32_t)((int32_t)BARRETT_V * a + (1 << 25) + 10 * (1 << 26));
    int32_t t = (int32_t)(x >> 26) - 10;
    return (int16_t)(a - t * Q);
}

/* a + q if a < 0 (a in (-q, q)) -> [0, q). */
static int16_t caddq(int16_t a)
{
    int16_t neg = (int16_t)((uint16_t)a >> 15);
    return (int16_t)(a + (Q & -neg));
}

/* a - q if a >= q (a in [0, 2q)) -> [0, q). */
static int16_t csubq(int16_t a)
{
    return caddq((int16_t)(a - Q));
}

/* ---- polynomials ------------------------------------------------------------------------------------ */

static void poly_reduce(poly *p)
{
    for (int i = 0; i < N; i++) p->c[i] = barrett(p->c[i]);
}

static void poly_add(poly *r, const poly *a)
{
    for (int i = 0; i < N; i++) r->c[i] = (int16_t)(r->c[i] + a->c[i]);
}

/* Forward NTT (FIPS 203 Algorithm 9), in place. Input |c| < q; output reduced (Barrett, centered). */
static void ntt(poly *p)
{
    int16_t *f = p->c;
    unsigned i = 1;
    for (unsigned len = 128; len >= 2; len >>= 1) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int16_t zeta = ZETAS[i++];
            for (unsigned j = start; j < start + len; j++) {
                int16_t t = fqmul(zeta, f[j + len]);
                f[j + len] = (int16_t)(f[j] - t);
                f[j] = (int16_t)(f[j] + t);
            }
        }
    }
    poly_reduce(p);
}

/* Inverse NTT (Algorithm 10), in place, times R (cancels the R^-1 of a base-case product). Input |c| <= q/2
 * (after Barrett); output |c| < q. */
static void invntt(poly *p)
{
    int16_t *f = p->c;
    unsigned i = 127;
    for (unsigned len = 2; len <= 128; len <<= 1) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int16_t zeta = ZETAS[i--];
            for (unsigned j = start; j < start + len; j++) {
                int16_t t = f[j];
                f[j] = barrett((int16_t)(t + f[j + len]));
                f[j + len] = fqmul(zeta, (int16_t)(f[j + len] - t));
            }
        }
    }
    for (int j = 0; j < N; j++) f[j] = fqmul(f[j], INVNTT_F);
}

/* r += a * b in the NTT domain (Algorithms 11/12), times R^-1. |a|, |b| < q; each call adds < 2q to |r|. */
static void poly_basemul_acc(poly *r, const poly *a, const poly *b)
{
    for (int i = 0; i < N / 2; i++) {
        int16_t a0 = a->c[2 * i], a1 = a->c[2 * i + 1], b0 = b->c[2 * i], b1 = b->c[2 * i + 1];
        int16_t c0 = (int16_t)(fqmul(fqmul(a1, b1), GAMMAS[i]) + fqmul(a0, b0));
        int16_t c1 = (int16_t)(fqmul(a0, b1) + fqmul(a1, b0));
        r->c[2 * i] = (int16_t)(r->c[2 * i] + c0);
        r->c[2 * i + 1] = (int16_t)(r->c[2 * i + 1] + c1);
    }
}

static void poly_zero(poly *p)
{
    for (int i = 0; i < N; i++) p->c[i] = 0;
}

/* ---- encoding (Algorithms 5/6) and compression (§4.2.1) ------------------------------------------- */

/* ByteEncode_d of coefficients in [0, 2^d). */
static void encode(uint8_t *out, const poly *p, int d)
{
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < N; i++) {
        acc |= (uint32_t)(uint16_t)p->c[i] << bits;
        bits += d;
        while (bits >= 8) {
            *out++ = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
}

/* ByteDecode_d, d < 12 (values in [0, 2^d)). */
static void decode(poly *p, const uint8_t *in, int d)
{
    uint32_t acc = 0, mask = (1u << d) - 1;
    int bits = 0;
    for (int i = 0; i < N; i++) {
        while (bits < d) {
            acc |= (uint32_t)*in++ << bits;
            bits += 8;
        }
        p->c[i] = (int16_t)(acc & mask);
        acc >>= d;
        bits -= d;
    }
}

/* ByteDecode_12: values reduced mod q (branch-free; dk may be secret). */
static void decode12(poly *p, const uint8_t *in)
{
    for (int i = 0; i < N / 2; i++) {
        uint16_t b0 = in[3 * i], b1 = in[3 * i + 1], b2 = in[3 * i + 2];
        p->c[2 * i] = csubq((int16_t)(b0 | ((b1 & 0x0F) << 8)));
        p->c[2 * i + 1] = csubq((int16_t)((b1 >> 4) | (b2 << 4)));
    }
}

/* ByteEncode_12 of coefficients in [0, q). */
static void encode12(uint8_t *out, const poly *p)
{
    for (int i = 0; i < N / 2; i++) {
        uint16_t a = (uint16_t)p->c[2 * i], b = (uint16_t)p->c[2 * i + 1];
        out[3 * i] = (uint8_t)a;
        out[3 * i + 1] = (uint8_t)((a >> 8) | (b << 4));
        out[3 * i + 2] = (uint8_t)(b >> 4);
    }
}

/* Compress_d on [0, q): round(2^d x / q) mod 2^d = floor((2^d x + (q-1)/2) / q) mod 2^d (q odd: no ties). */
static void poly_compress(poly *p, int d)
{
    for (int i = 0; i < N; i++) {
        uint64_t n = ((uint64_t)(uint16_t)p->c[i] << d) + (Q - 1) / 2;
        p->c[i] = (int16_t)(((n * DIVQ_M) >> 36) & ((1u << d) - 1));
    }
}

/* Decompress_d: round(q y / 2^d). */
static void poly_decompress(poly *p, int d)
{
    for (int i = 0; i < N; i++) p->c[i] = (int16_t)(((uint32_t)(uint16_t)p->c[i] * Q + (1u << (d - 1))) >> d);
}

/* Centered -> [0, q). */
static void poly_freeze(poly *p)
{
    for (int i = 0; i < N; i++) p->c[i] = caddq(barrett(p->c[i]));
}

/* ---- sampling (Algorithms 7/8) ------------------------------------------------------------------------ */

/* A-hat[i][j] = SampleNTT(rho || j || i); public data, rejection sampling may branch. */
static void sample_ntt(poly *p, const uint8_t rho[32], uint8_t j, uint8_t i)
{
    qs_keccak x;
    uint8_t idx[2] = { j, i }, buf[QS_SHAKE128_RATE];
    qs_shake128_init(&x);
    qs_keccak_absorb(&x, rho, 32);
    qs_keccak_absorb(&x, idx, 2);
    int n = 0;
    while (n < N) {
        qs_keccak_squeeze(&x, buf, sizeof buf);
        for (unsigned b = 0; b + 3 <= sizeof buf && n < N; b += 3) {
            uint16_t d1 = (uint16_t)(buf[b] | ((buf[b + 1] & 0x0F) << 8));
            uint16_t d2 = (uint16_t)((buf[b + 1] >> 4) | (buf[b + 2] << 4));
            if (d1 < Q) p->c[n++] = (int16_t)d1;
            if (d2 < Q && n < N) p->c[n++] = (int16_t)d2;
        }
    }
}

/* SamplePolyCBD_eta(PRF_eta(s, nonce)), eta in {2, 3}; branch-free. */
static void sample_cbd(poly *p, const uint8_t s[32], uint8_t nonce, int eta)
{
    uint8_t buf[64 * 3];
    qs_keccak x;
    qs_shake256_init(&x);
    qs_keccak_absorb(&x, s, 32);
    qs_keccak_absorb(&x, &nonce, 1);
    qs_keccak_squeeze(&x, buf, 64u * (unsigned)eta);
    if (eta == 2) {
        for (int w = 0; w < N / 8; w++) {
            uint32_t t = (uint32_t)buf[4 * w] | (uint32_t)buf[4 * w + 1] << 8 | (uint32_t)buf[4 * w + 2] << 16 |
                         (uint32_t)buf[4 * w + 3] << 24;
            uint32_t d = (t & 0x55555555u) + ((t >> 1) & 0x55555555u);   /* 2-bit sums of bit pairs */
            for (int j = 0; j < 8; j++)
                p->c[8 * w + j] = (int16_t)((int16_t)((d >> (4 * j)) & 3) - (int16_t)((d >> (4 * j + 2)) & 3));
        }
    } else {
        for (int w = 0; w < N / 4; w++) {
            uint32_t t = (uint32_t)buf[3 * w] | (uint32_t)buf[3 * w + 1] << 8 | (uint32_t)buf[3 * w + 2] << 16;
            uint32_t d = (t & 0x249249u) + ((t >> 1) & 0x249249u) + ((t >> 2) & 0x249249u);   /* 3-bit sums */
            for (int j = 0; j < 4; j++)
                p->c[4 * w + j] = (int16_t)((int16_t)((d >> (6 * j)) & 7) - (int16_t)((d >> (6 * j + 3)) & 7));
        }
    }
    qs_pqc_wipe(buf, sizeof buf);
    qs_pqc_wipe(&x, sizeof x);
}

/* G(a || b) = SHA3-512 -> out[64]; b may be empty. */
static void hash_g(uint8_t out[64], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    qs_keccak x;
    qs_sha3_512_init(&x);
    qs_keccak_absorb(&x, a, alen);
    qs_keccak_absorb(&x, b, blen);
    qs_keccak_squeeze(&x, out, 64);
    qs_pqc_wipe(&x, sizeof x);
}

/* ---- K-PKE (Algorithms 13-15) ------------------------------------------------------------------------- */

/* K-PKE.KeyGen: ek = encode12(t-hat) || rho, dkpke = encode12(s-hat). */
static void pke_keygen(const params *P, uint8_t *ek, uint8_t *dkpke, const uint8_t d[32])
{
    const int k = P->k;
    uint8_t seeds[64];                       /* rho || sigma */
    uint8_t kb = (uint8_t)k;
    poly s[KMAX], acc, a;
    hash_g(seeds, d, 32, &kb, 1);
    const uint8_t *rho = seeds, *sigma = seeds + 32;
    for (int i = 0; i < k; i++) {
        sample_cbd(&s[i], sigma, (uint8_t)i, P->eta1);
        ntt(&s[i]);
    }
    for (int i = 0; i < k; i++) {
        poly_zero(&acc);
        for (int j = 0; j < k; j++) {
            sample_ntt(&a, rho, (uint8_t)j, (uint8_t)i);
            poly_basemul_acc(&acc, &a, &s[j]);
        }
        for (int c = 0; c < N; c++) acc.c[c] = fqmul(barrett(acc.c[c]), MONT_R2);   /* cancel R^-1 */
        sample_cbd(&a, sigma, (uint8_t)(k + i), P->eta1);                             /* e_i */
        ntt(&a);
        poly_add(&acc, &a);
        poly_freeze(&acc);
        encode12(ek + 384 * i, &acc);
    }
    for (int i = 0; i < 32; i++) ek[384 * k + i] = rho[i];
    for (int i = 0; i < k; i++) {
        poly_freeze(&s[i]);
        encode12(dkpke + 384 * i, &s[i]);
    }
    qs_pqc_wipe(seeds, sizeof seeds);
    qs_pqc_wipe(s, sizeof s);
    qs_pqc_wipe(&acc, sizeof acc);
    qs_pqc_wipe(&a, sizeof a);
}

/* K-PKE.Encrypt(ek, m, r) -> ct. ek's t-hat is decoded mod q (ek may come from a dk that was not
 * modulus-checked). */
static void pke_encrypt(const params *P, uint8_t *ct, const uint8_t *ek, const uint8_t m[32], const uint8_t r[32])
{
    const int k = P->k;
    const uint8_t *rho = ek + 384 * k;
    poly y[KMAX], acc, a;
    uint8_t nonce = 0;
    for (int i = 0; i < k; i++) {
        sample_cbd(&y[i], r, nonce++, P->eta1);
        ntt(&y[i]);
    }
    /* u = NTT^-1(A-hat^T y-hat) + e1 */
    for (int i = 0; i < k; i++) {
        poly_zero(&acc);
        for (int j = 0; j < k; j++) {
            sample_ntt(&a, rho, (uint8_t)i, (uint8_t)j);   /* A-hat[j][i] = SampleNTT(rho || i || j) */
            poly_basemul_acc(&acc, &a, &y[j]);
        }
        poly_reduce(&acc);
        invntt(&acc);
        sample_cbd(&a, r, nonce++, 2);                     /* e1_i */
        poly_add(&acc, &a);
        poly_freeze(&acc);
        poly_compress(&acc, P->du);
        encode(ct + 32 * P->du * i, &acc, P->du);
    }
    /* v = NTT^-1(t-hat^T y-hat) + e2 + Decompress_1(m) */
    poly_zero(&acc);
    for (int j = 0; j < k; j++) {
        decode12(&a, ek + 384 * j);
        poly_basemul_acc(&acc, &a, &y[j]);
    }
    poly_reduce(&acc);
    invntt(&acc);
    sample_cbd(&a, r, nonce, 2);                           /* e2 */
    poly_add(&acc, &a);
    for (int i = 0; i < 32; i++)
        for (int b = 0; b < 8; b++)                        /* branch-free: -bit & ceil(q/2) */
            acc.c[8 * i + b] = (int16_t)(acc.c[8 * i + b] + (-(int16_t)((m[i] >> b) & 1) & ((Q + 1) / 2)));
    poly_freeze(&acc);
    poly_compress(&acc, P->dv);
    encode(ct + 32 * P->du * k, &acc, P->dv);
    qs_pqc_wipe(y, sizeof y);
    qs_pqc_wipe(&acc, sizeof acc);
    qs_pqc_wipe(&a, sizeof a);
}

/* K-PKE.Decrypt(dkpke, ct) -> m. */
static void pke_decrypt(const params *P, uint8_t m[32], const uint8_t *dkpke, const uint8_t *ct)
{
    const int k = P->k;
    poly acc, u, s;
    poly_zero(&acc);
    for (int i = 0; i < k; i++) {
        decode(&u, ct + 32 * P->du * i, P->du);
        poly_decompress(&u, P->du);
        ntt(&u);
        decode12(&s, dkpke + 384 * i);
        poly_basemul_acc(&acc, &s, &u);
    }
    poly_reduce(&acc);
    invntt(&acc);
    decode(&u, ct + 32 * P->du * k, P->dv);                /* v */
    poly_decompress(&u, P->dv);
    for (int i = 0; i < N; i++) u.c[i] = (int16_t)(u.c[i] - acc.c[i]);   /* w = v - s^T u */
    poly_freeze(&u);
    poly_compress(&u, 1);
    for (int i = 0; i < 32; i++) {
        uint8_t byte = 0;
        for (int b = 0; b < 8; b++) byte |= (uint8_t)(u.c[8 * i + b] << b);
        m[i] = byte;
    }
    qs_pqc_wipe(&acc, sizeof acc);
    qs_pqc_wipe(&u, sizeof u);
    qs_pqc_wipe(&s, sizeof s);
}

/* ---- ML-KEM (Algorithms 16-18) and input checks (§7) -------------------------------------------------- */

int qs_mlkem_check_ek(int k, const uint8_t *ek)
{
    params P;
    if (get_params(k, &P)) return QS_PQC_EPARAM;
    /* Modulus check: ByteEncode_12(ByteDecode_12(ek)) == ek, i.e. every 12-bit value < q (public data). */
    for (int i = 0; i < 128 * k; i++) {
        const uint8_t *b = ek + 3 * i;
        if ((b[0] | ((b[1] & 0x0F) << 8)) >= Q || ((b[1] >> 4) | (b[2] << 4)) >= Q) return QS_PQC_EINPUT;
    }
    return QS_PQC_OK;
}

int qs_mlkem_check_dk(int k, const uint8_t *dk)
{
    params P;
    if (get_params(k, &P)) return QS_PQC_EPARAM;
    /* Hash check: H(ek_pke) == h. Public-key data only, so an ordinary compare is fine. */
    uint8_t h[32];
    qs_sha3_256(h, dk + 384 * k, 384u * (size_t)k + 32u);
    const uint8_t *hh = dk + 768 * k + 32;
    uint8_t diff = 0;
    for (int i = 0; i < 32; i++) diff |= (uint8_t)(h[i] ^ hh[i]);
    return diff ? QS_PQC_EINPUT : QS_PQC_OK;
}

int qs_mlkem_keygen(int k, uint8_t *ek, uint8_t *dk, const uint8_t d[32], const uint8_t z[32])
{
    params P;
    if (get_params(k, &P)) return QS_PQC_EPARAM;
    pke_keygen(&P, ek, dk, d);                             /* dk starts with dk_pke */
    size_t eklen = 384u * (size_t)k + 32u;
    for (size_t i = 0; i < eklen; i++) dk[384u * (size_t)k + i] = ek[i];
    qs_sha3_256(dk + 768 * k + 32, ek, eklen);
    for (int i = 0; i < 32; i++) dk[768 * k + 64 + i] = z[i];
    return QS_PQC_OK;
}

int qs_mlkem_encaps(int k, uint8_t *ct, uint8_t ss[32], const uint8_t *ek, const uint8_t m[32])
{
    params P;
    if (get_params(k, &P)) return QS_PQC_EPARAM;
    if (qs_mlkem_check_ek(k, ek) != QS_PQC_OK) {
        for (size_t i = 0; i < qs_mlkem_ct_bytes(k); i++) ct[i] = 0;
        for (int i = 0; i < 32; i++) ss[i] = 0;
        return QS_PQC_EINPUT;
    }
    uint8_t h[32], kr[64];                                 /* (K, r) = G(m || H(ek)) */
    qs_sha3_256(h, ek, 384u * (size_t)k + 32u);
    hash_g(kr, m, 32, h, 32);
    pke_encrypt(&P, ct, ek, m, kr + 32);
    for (int i = 0; i < 32; i++) ss[i] = kr[i];
    qs_pqc_wipe(kr, sizeof kr);
    return QS_PQC_OK;
}

int qs_mlkem_decaps(int k, uint8_t ss[32], const uint8_t *ct, const uint8_t *dk)
{
    params P;
    if (get_params(k, &P)) return QS_PQC_EPARAM;
    if (qs_mlkem_check_dk(k, dk) != QS_PQC_OK) {
        for (int i = 0; i < 32; i++) ss[i] = 0;
        return QS_PQC_EINPUT;
    }
    const uint8_t *dkpke = dk, *ekpke = dk + 384 * k, *h = dk + 768 * k + 32, *z = dk + 768 * k + 64;
    const size_t ctlen = qs_mlkem_ct_bytes(k);
    uint8_t m[32], kr[64], kbar[32], ct2[QS_MLKEM_CT_MAX];
    pke_decrypt(&P, m, dkpke, ct);
    hash_g(kr, m, 32, h, 32);                              /* (K', r') = G(m' || h) */
    {                                                      /* K-bar = J(z || c) = SHAKE256(z || c, 32) */
        qs_keccak x;
        qs_shake256_init(&x);
        qs_keccak_absorb(&x, z, 32);
        qs_keccak_absorb(&x, ct, ctlen);
        qs_keccak_squeeze(&x, kbar, 32);
        qs_pqc_wipe(&x, sizeof x);
    }
    pke_encrypt(&P, ct2, ekpke, m, kr + 32);
    /* Constant time: diff != 0 iff c != c'; mask = 0xFF then, 0x00 otherwise. */
    uint32_t diff = 0;
    for (size_t i = 0; i < ctlen; i++) diff |= (uint32_t)(ct[i] ^ ct2[i]);
    volatile uint8_t vmask = (uint8_t)((0u - diff) >> 8);  /* volatile: keeps the select branch-free */
    uint8_t mask = vmask;
    for (int i = 0; i < 32; i++) ss[i] = (uint8_t)(kr[i] ^ (mask & (kr[i] ^ kbar[i])));
    qs_pqc_wipe(m, sizeof m);
    qs_pqc_wipe(kr, sizeof kr);
    qs_pqc_wipe(kbar, sizeof kbar);
    qs_pqc_wipe(ct2, sizeof ct2);
    return QS_PQC_OK;
}
