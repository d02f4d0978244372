/* ML-DSA (FIPS 204), portable C11: see mldsa.h for the interface, side-channel notes and stack budgets.
 * Written for qslab from the FIPS 204 text. Conventions:
 *   - coefficients are int32_t; q = 8380417; Montgomery factor R = 2^32;
 *   - ntt() maps a standard-domain polynomial to the NTT domain (no Montgomery factor); the pointwise
 *     product multiplies by R^-1 and invntt_tomont() multiplies by R, so invntt(ntt(a) o ntt(b)) = a*b;
 *   - the zeta table holds zeta^brv8(k) * R mod q (centered), zeta = 1753, as FIPS 204 Appendix B orders it. */
#include "mldsa.h"
#include "fips202.h"

#define N 256
#define Q 8380417
#define QINV 58728449            /* q^-1 mod 2^32 */
#define D 13
#define INVNTT_F 41978           /* R^2 / 256 mod q: undoes the 256x of the inverse transform and adds R */
#define SEEDBYTES 32
#define CRHBYTES 64
#define TRBYTES 64
#define KMAX 8
#define LMAX 7

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

typedef struct {
    int lvl;
    unsigned k, l;          /* A is k x l */
    int32_t eta;
    unsigned tau;
    int32_t beta;           /* tau * eta */
    int32_t gamma1;         /* 2^17 or 2^19 */
    int32_t gamma2;         /* (q-1)/88 or (q-1)/32 */
    unsigned omega;
    unsigned ctb;           /* lambda / 4: bytes of c-tilde */
    unsigned eta_bits;      /* bitlen(2 eta) */
    unsigned z_bits;        /* 1 + bitlen(gamma1 - 1) */
    unsigned w1_bits;       /* bitlen((q-1)/(2 gamma2) - 1) */
} params;

static const params P44 = { 44, 4, 4, 2, 39, 78, 1 << 17, (Q - 1) / 88, 80, 32, 3, 18, 6 };
static const params P65 = { 65, 6, 5, 4, 49, 196, 1 << 19, (Q - 1) / 32, 55, 48, 4, 20, 4 };
static const params P87 = { 87, 8, 7, 2, 60, 120, 1 << 19, (Q - 1) / 32, 75, 64, 3, 20, 4 };

static const params *get_params(int lvl)
{
    return lvl == 44 ? &P44 : lvl == 65 ? &P65 : lvl == 87 ? &P87 : 0;
}

static size_t pk_bytes(const params *p) { return SEEDBYTES + (size_t)p->k * 320u; }
static size_t sk_bytes(const params *p)
{
    return 2u * SEEDBYTES + TRBYTES + (size_t)(p->k + p->l) * 32u * p->eta_bits + (size_t)p->k * 416u;
}
static size_t sig_bytes(const params *p) { return p->ctb + (size_t)p->l * 32u * p->z_bits + p->omega + p->k; }

size_t qs_mldsa_pk_bytes(int lvl) { const params *p = get_params(lvl); return p ? pk_bytes(p) : 0; }
size_t qs_mldsa_sk_bytes(int lvl) { const params *p = get_params(lvl); return p ? sk_bytes(p) : 0; }
size_t qs_mldsa_sig_bytes(int lvl) { const params *p = get_params(lvl); return p ? sig_bytes(p) : 0; }

/* ---------------------------------------------------------------------------------------------------------
 * Modular arithmetic */

static const int32_t zetas[N] = {
    -4186625, 25847, -2608894, -518909, 237124, -777960, -876248, 466468,
    1826347, 2353451, -359251, -2091905, 3119733, -2884855, 3111497, 2680103,
    2725464, 1024112, -1079900, 3585928, -549488, -1119584, 2619752, -2108549,
    -2118186, -3859737, -1399561, -3277672, 1757237, -19422, 4010497, 280005,
    2706023, 95776, 3077325, 3530437, -1661693, -3592148, -2537516, 3915439,
    -3861115, -3043716, 3574422, -2867647, 3539968, -300467, 2348700, -539299,
    -1699267, -1643818, 3505694, -3821735, 3507263, -2140649, -1600420, 3699596,
    811944, 531354, 954230, 3881043, 3900724, -2556880, 2071892, -2797779,
    -3930395, -1528703, -3677745, -3041255, -1452451, 3475950, 2176455, -1585221,
    -1257611, 1939314, -4083598, -1000202, -3190144, -3157330, -3632928, 126922,
    3412210, -983419, 2147896, 2715295, -2967645, -3693493, -411027, -2477047,
    -671102, -1228525, -22981, -1308169, -381987, 1349076, 1852771, -1430430,
    -3343383, 264944, 508951, 3097992, 44288, -1100098, 904516, 3958618,
    -3724342, -8578, 1653064, -3249728, 2389356, -210977, 759969, -1316856,
    189548, -3553272, 3159746, -1851402, -2409325, -177440, 1315589, 1341330,
    1285669, -1584928, -812732, -1439742, -3019102, -3881060, -3628969, 3839961,
    2091667, 3407706, 2316500, 3817976, -3342478, 2244091, -2446433, -3562462,
    266997, 2434439, -1235728, 3513181, -3520352, -3759364, -1197226, -3193378,
    900702, 1859098, 909542, 819034, 495491, -1613174, -43260, -522500,
    -655327, -3122442, 2031748, 3207046, -3556995, -525098, -768622, -3595838,
    342297, 286988, -2437823, 4108315, 3437287, -3342277, 1735879, 203044,
    2842341, 2691481, -2590150, 1265009, 4055324, 1247620, 2486353, 1595974,
    -3767016, 1250494, 2635921, -3548272, -2994039, 1869119, 1903435, -1050970,
    -1333058, 1237275, -3318210, -1430225, -451100, 1312455, 3306115, -1962642,
    -1279661, 1917081, -2546312, -1374803, 1500165, 777191, 2235880, 3406031,
    -542412, -2831860, -1671176, -1846953, -2584293, -3724270, 594136, -3776993,
    -2013608, 2432395, 2454455, -164721, 1957272, 3369112, 185531, -1207385,
    -3183426, 162844, 1616392, 3014001, 810149, 1652634, -3694233, -1799107,
    -3038916, 3523897, 3866901, 269760, 2213111, -975884, 1717735, 472078,
    -426683, 1723600, -1803090, 1910376, -1667432, -1104333, -260646, -3833893,
    -2939036, -2235985, -420899, -2286327, 183443, -976891, 1612842, -3545687,
    -554416, 3919660, -48306, -1362209, 3937738, 1400424, -846154, 1976782
};

/* a * 2^-32 mod q, result in (-q, q) for |a| < 2^31 q. */
static int32_t mont_reduce(int64_t a)
{
    int32_t t = (int32_t)(uint32_t)((uint64_t)a * (uint64_t)QINV);
    return (int32_t)((a - (int64_t)t * Q) >> 32);
}

/* Representative in [-6283009, 6283008] for |a| < 2^31 - 2^22. */
static int32_t reduce32(int32_t a)
{
    int32_t t = (a + (1 << 22)) >> 23;
    return a - t * Q;
}

/* Adds q when a is negative: (-q, q) -> [0, q). */
static int32_t caddq(int32_t a)
{
    return a + ((a >> 31) & Q);
}

static int32_t freeze(int32_t a)
{
    return caddq(reduce32(a));
}

static void ntt(int32_t a[N])
{
    unsigned k = 0;
    for (unsigned len = 128; len > 0; len >>= 1) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int64_t z = zetas[++k];
            for (unsigned j = start; j < start + len; j++) {
                int32_t t = mont_reduce(z * a[j + len]);
                a[j + len] = a[j] - t;
                a[j] = a[j] + t;
            }
        }
    }
}

/* Input |a| < 6283009 (reduce32 first) so the 8 levels of unreduced sums stay below 2^31; output (-q, q). */
static void invntt_tomont(int32_t a[N])
{
    unsigned k = N;
    for (unsigned len = 1; len < N; len <<= 1) {
        for (unsigned start = 0; start < N; start += 2 * len) {
            int64_t z = -(int64_t)zetas[--k];
            for (unsigned j = start; j < start + len; j++) {
                int32_t t = a[j];
                a[j] = t + a[j + len];
                a[j + len] = mont_reduce(z * (t - a[j + len]));
            }
        }
    }
    for (unsigned j = 0; j < N; j++) a[j] = mont_reduce((int64_t)INVNTT_F * a[j]);
}

static void poly_pointwise(int32_t c[N], const int32_t a[N], const int32_t b[N])
{
    for (unsigned i = 0; i < N; i++) c[i] = mont_reduce((int64_t)a[i] * b[i]);
}

static void poly_pointwise_acc(int32_t c[N], const int32_t a[N], const int32_t b[N])
{
    for (unsigned i = 0; i < N; i++) c[i] += mont_reduce((int64_t)a[i] * b[i]);
}

static void poly_reduce(int32_t a[N])
{
    for (unsigned i = 0; i < N; i++) a[i] = reduce32(a[i]);
}

static void poly_freeze(int32_t a[N])
{
    for (unsigned i = 0; i < N; i++) a[i] = freeze(a[i]);
}

/* 1 when some coefficient, taken as its centered representative mod q, has |a| >= bound; branch-free. The
 * coefficients must be in (-2^31 + 2^22, 2^31 - 2^22). */
static int32_t poly_exceeds(const int32_t a[N], int32_t bound)
{
    int32_t bad = 0;
    for (unsigned i = 0; i < N; i++) {
        int32_t x = freeze(a[i]);
        x -= (((Q - 1) / 2 - x) >> 31) & Q;   /* centered: [-(q-1)/2, (q-1)/2] */
        int32_t m = x >> 31;
        x = (x ^ m) - m;                                /* |x| */
        bad |= (bound - 1 - x) >> 31;                   /* all ones when |x| >= bound */
    }
    return bad & 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * Rounding (FIPS 204 section 7.4) */

/* Power2Round: r in [0, q) -> r1 = (r - r0) / 2^d, r0 = r mod+- 2^d in (-2^12, 2^12]. */
static int32_t power2round(int32_t *r0, int32_t r)
{
    int32_t r1 = (r + (1 << (D - 1)) - 1) >> D;
    *r0 = r - (r1 << D);
    return r1;
}

/* Decompose: r in [0, q) -> (r1, r0) with r = r1 * 2 gamma2 + r0 mod q, r0 in (-gamma2, gamma2], except that
 * r - r0 = q - 1 gives r1 = 0, r0 = r0 - 1. r1' = floor((r + gamma2 - 1) / (2 gamma2)) is a multiply-shift
 * (exact over the whole input range; checked exhaustively), no division instruction, no branch. */
static int32_t decompose(int32_t *r0, int32_t r, int32_t gamma2)
{
    int32_t r1;
    if (gamma2 == (Q - 1) / 32) {                        /* parameter (public) branch */
        uint64_t x = (uint64_t)(uint32_t)(r + gamma2 - 1);
        r1 = (int32_t)((x * UINT64_C(537395713)) >> 48);  /* ceil(2^48 / 523776) */
        r1 &= 15;                                         /* 16 -> 0 */
    } else {
        uint64_t x = (uint64_t)(uint32_t)(r + gamma2 - 1);
        r1 = (int32_t)((x * UINT64_C(1477838210)) >> 48); /* ceil(2^48 / 190464) */
        r1 &= ~((43 - r1) >> 31);                         /* 44 -> 0 */
    }
    int32_t a0 = r - r1 * 2 * gamma2;
    a0 -= (((Q - 1) / 2 - a0) >> 31) & Q;                 /* the wrapped case: r - q */
    *r0 = a0;
    return r1;
}

/* UseHint (public data): the high bits of r, moved by one step (mod m) towards r0's sign when h = 1. */
static int32_t use_hint(int32_t r, int h, int32_t gamma2)
{
    int32_t r0, r1 = decompose(&r0, r, gamma2);
    if (!h) return r1;
    int32_t m = (Q - 1) / (2 * gamma2);
    if (r0 > 0) return r1 + 1 == m ? 0 : r1 + 1;
    return r1 == 0 ? m - 1 : r1 - 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * Bit packing (FIPS 204 section 7.1): coefficient i occupies bits [i*bits, (i+1)*bits), little-endian.
 * The packed value is base + sign * a[i] (sign = +1 for SimpleBitPack, -1 for BitPack's b - w). */

static void pack_poly(uint8_t *out, const int32_t a[N], unsigned bits, int32_t base, int32_t sign)
{
    uint64_t acc = 0;
    unsigned have = 0;
    uint32_t mask = (UINT32_C(1) << bits) - 1;
    for (unsigned i = 0; i < N; i++) {
        acc |= (uint64_t)((uint32_t)(base + sign * a[i]) & mask) << have;
        have += bits;
        while (have >= 8) {
            *out++ = (uint8_t)acc;
            acc >>= 8;
            have -= 8;
        }
    }
}

static void unpack_poly(int32_t a[N], const uint8_t *in, unsigned bits, int32_t base, int32_t sign)
{
    uint64_t acc = 0;
    unsigned have = 0;
    uint32_t mask = (UINT32_C(1) << bits) - 1;
    for (unsigned i = 0; i < N; i++) {
        while (have < bits) {
            acc |= (uint64_t)*in++ << have;
            have += 8;
        }
        a[i] = base + sign * (int32_t)((uint32_t)acc & mask);
        acc >>= bits;
        have -= bits;
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Sampling (FIPS 204 section 7.3) */

/* RejNTTPoly(rho || s || r): A[r][s] in the NTT domain, from public rho (branches fine). */
static void sample_a(int32_t a[N], const uint8_t rho[SEEDBYTES], unsigned row, unsigned col)
{
    qs_keccak st;
    uint8_t buf[QS_SHAKE128_RATE];
    uint8_t idx[2] = { (uint8_t)col, (uint8_t)row };
    qs_shake128_init(&st);
    qs_keccak_absorb(&st, rho, SEEDBYTES);
    qs_keccak_absorb(&st, idx, 2);
    unsigned ctr = 0;
    while (ctr < N) {
        qs_keccak_squeeze(&st, buf, sizeof buf);
        for (unsigned pos = 0; pos + 3 <= sizeof buf && ctr < N; pos += 3) {
            uint32_t t = (uint32_t)buf[pos] | (uint32_t)buf[pos + 1] << 8 | (uint32_t)(buf[pos + 2] & 0x7F) << 16;
            if (t < (uint32_t)Q) a[ctr++] = (int32_t)t;
        }
    }
}

/* RejBoundedPoly(rho' || IntegerToBytes(idx, 2)): coefficients in [-eta, eta] from secret rho'. Each half-byte
 * is accepted or rejected with a comparison turned into a mask; the value is computed branch-free and stored
 * with a masked select at the running position. Only the accept pattern (which depends on rejected
 * half-bytes alone) decides how far the loop runs. */
static void sample_eta(int32_t a[N], const uint8_t rhop[CRHBYTES], unsigned idx, int32_t eta)
{
    qs_keccak st;
    uint8_t buf[QS_SHAKE256_RATE];
    uint8_t ib[2] = { (uint8_t)idx, (uint8_t)(idx >> 8) };
    qs_shake256_init(&st);
    qs_keccak_absorb(&st, rhop, CRHBYTES);
    qs_keccak_absorb(&st, ib, 2);
    unsigned ctr = 0;
    while (ctr < N) {
        qs_keccak_squeeze(&st, buf, sizeof buf);
        for (unsigned pos = 0; pos < 2 * sizeof buf && ctr < N; pos++) {
            int32_t z = (buf[pos >> 1] >> (4 * (pos & 1))) & 15;
            int32_t ok, v;
            if (eta == 2) {                                   /* parameter (public) branch */
                ok = (z - 15) >> 31;                          /* z < 15 */
                v = 2 - (z - 5 * ((z * 205) >> 10));          /* 2 - (z mod 5) */
            } else {
                ok = (z - 9) >> 31;                           /* z < 9 */
                v = 4 - z;
            }
            a[ctr] = (a[ctr] & ~ok) | (v & ok);
            ctr += (unsigned)(ok & 1);
        }
    }
    qs_pqc_wipe(&st, sizeof st);
    qs_pqc_wipe(buf, sizeof buf);
}

/* ExpandMask, one polynomial: y = gamma1 - BitUnpack(H(rho'' || IntegerToBytes(kappa, 2), 32 z_bits)). */
static void sample_mask(int32_t a[N], const uint8_t rhopp[CRHBYTES], unsigned kappa, const params *p)
{
    qs_keccak st;
    uint8_t buf[32 * 20];
    uint8_t ib[2] = { (uint8_t)kappa, (uint8_t)(kappa >> 8) };
    qs_shake256_init(&st);
    qs_keccak_absorb(&st, rhopp, CRHBYTES);
    qs_keccak_absorb(&st, ib, 2);
    qs_keccak_squeeze(&st, buf, 32u * p->z_bits);
    unpack_poly(a, buf, p->z_bits, p->gamma1, -1);
    qs_pqc_wipe(&st, sizeof st);
    qs_pqc_wipe(buf, sizeof buf);
}

/* SampleInBall(c~): tau coefficients +-1. The byte stream decides j (rejection of bytes > i, independent of
 * the accepted j). With ct set (signing: c of rejected iterations is secret), the swap c[i] = c[j], c[j] = s is
 * a masked sweep over positions 0..i instead of an index by j. */
static void sample_in_ball(int32_t c[N], const uint8_t *ctilde, const params *p, int ct)
{
    qs_keccak st;
    uint8_t buf[QS_SHAKE256_RATE];
    qs_shake256_init(&st);
    qs_keccak_absorb(&st, ctilde, p->ctb);
    qs_keccak_squeeze(&st, buf, sizeof buf);
    uint64_t signs = 0;
    for (unsigned i = 0; i < 8; i++) signs |= (uint64_t)buf[i] << (8 * i);
    unsigned pos = 8;
    for (unsigned i = 0; i < N; i++) c[i] = 0;
    for (unsigned i = N - p->tau; i < N; i++) {
        unsigned j;
        do {
            if (pos == sizeof buf) {
                qs_keccak_squeeze(&st, buf, sizeof buf);
                pos = 0;
            }
            j = buf[pos++];
        } while (j > i);
        int32_t s = 1 - 2 * (int32_t)(signs & 1);
        signs >>= 1;
        if (ct) {
            int32_t cj = 0;
            for (unsigned t = 0; t <= i; t++) {
                int32_t m = -(int32_t)((((uint32_t)(t ^ j)) - 1u) >> 31);   /* all ones when t == j */
                cj |= c[t] & m;
            }
            c[i] = cj;
            for (unsigned t = 0; t <= i; t++) {
                int32_t m = -(int32_t)((((uint32_t)(t ^ j)) - 1u) >> 31);
                c[t] = (c[t] & ~m) | (s & m);
            }
        } else {
            c[i] = c[j];
            c[j] = s;
        }
    }
    qs_pqc_wipe(&st, sizeof st);
    qs_pqc_wipe(buf, sizeof buf);
    qs_pqc_wipe(&signs, sizeof signs);
}

/* ---------------------------------------------------------------------------------------------------------
 * Small helpers */

static void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

static void zero_bytes(uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = 0;
}

/* mu = H(tr || pre || msg, 64), or the caller's mu. */
static void compute_mu(uint8_t mu[CRHBYTES], const uint8_t tr[TRBYTES], const uint8_t *pre, size_t prelen,
                       const uint8_t *msg, size_t msglen, const uint8_t *ext_mu)
{
    if (ext_mu) {
        copy_bytes(mu, ext_mu, CRHBYTES);
        return;
    }
    qs_keccak st;
    qs_shake256_init(&st);
    qs_keccak_absorb(&st, tr, TRBYTES);
    if (prelen) qs_keccak_absorb(&st, pre, prelen);
    if (msglen) qs_keccak_absorb(&st, msg, msglen);
    qs_keccak_squeeze(&st, mu, CRHBYTES);
    qs_pqc_wipe(&st, sizeof st);
}

/* Offsets in sk = rho || K || tr || s1 || s2 || t0 and sig = c~ || z || h. */
static size_t sk_s1(const params *p) { (void)p; return 2u * SEEDBYTES + TRBYTES; }
static size_t sk_s2(const params *p) { return sk_s1(p) + (size_t)p->l * 32u * p->eta_bits; }
static size_t sk_t0(const params *p) { return sk_s2(p) + (size_t)p->k * 32u * p->eta_bits; }
static size_t sig_h(const params *p) { return p->ctb + (size_t)p->l * 32u * p->z_bits; }

/* ---------------------------------------------------------------------------------------------------------
 * KeyGen_internal (Alg 6). Workspace: s1hat[l], acc, tmp. */

#define KEYGEN_WS(k, l) ((l) + 2)

static int keygen_core(const params *p, int32_t (*ws)[N], uint8_t *pk, uint8_t *sk, const uint8_t xi[32])
{
    int32_t (*s1h)[N] = ws, *acc = ws[p->l], *tmp = ws[p->l + 1];
    uint8_t seeds[2 * SEEDBYTES + CRHBYTES];     /* rho || rho' || K */
    const uint8_t *rho = seeds, *rhop = seeds + SEEDBYTES, *key = seeds + SEEDBYTES + CRHBYTES;
    uint8_t kl[2] = { (uint8_t)p->k, (uint8_t)p->l };
    qs_keccak st;

    qs_shake256_init(&st);
    qs_keccak_absorb(&st, xi, SEEDBYTES);
    qs_keccak_absorb(&st, kl, 2);
    qs_keccak_squeeze(&st, seeds, sizeof seeds);
    qs_pqc_wipe(&st, sizeof st);

    copy_bytes(pk, rho, SEEDBYTES);
    copy_bytes(sk, rho, SEEDBYTES);
    copy_bytes(sk + SEEDBYTES, key, SEEDBYTES);

    for (unsigned j = 0; j < p->l; j++) {
        sample_eta(s1h[j], rhop, j, p->eta);
        pack_poly(sk + sk_s1(p) + (size_t)j * 32u * p->eta_bits, s1h[j], p->eta_bits, p->eta, -1);
        ntt(s1h[j]);
    }
    for (unsigned i = 0; i < p->k; i++) {
        sample_a(tmp, rho, i, 0);
        poly_pointwise(acc, tmp, s1h[0]);
        for (unsigned j = 1; j < p->l; j++) {
            sample_a(tmp, rho, i, j);
            poly_pointwise_acc(acc, tmp, s1h[j]);
        }
        poly_reduce(acc);
        invntt_tomont(acc);
        sample_eta(tmp, rhop, p->l + i, p->eta);                      /* s2[i] */
        pack_poly(sk + sk_s2(p) + (size_t)i * 32u * p->eta_bits, tmp, p->eta_bits, p->eta, -1);
        for (unsigned n = 0; n < N; n++) {
            int32_t r0, t = freeze(acc[n] + tmp[n]);
            tmp[n] = power2round(&r0, t);                             /* t1 */
            acc[n] = r0;                                              /* t0 */
        }
        pack_poly(pk + SEEDBYTES + (size_t)i * 320u, tmp, 10, 0, 1);
        pack_poly(sk + sk_t0(p) + (size_t)i * 416u, acc, 13, 1 << (D - 1), -1);
    }
    qs_shake256(sk + 2 * SEEDBYTES, TRBYTES, pk, pk_bytes(p));        /* tr = H(pk, 64) */
    qs_pqc_wipe(seeds, sizeof seeds);
    return QS_PQC_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Sign_internal (Alg 7). Workspace: s1hat[l], s2hat[k], y/z[l], w[k], chat, t1, t2.
 * Per iteration: y[j] is sampled, transformed into t1 and multiplied into all k accumulators w[i] with A[i][j]
 * generated on the spot (column order), so neither A nor y-hat is ever held whole. */

#define SIGN_WS(k, l) (2 * (l) + 2 * (k) + 3)

static int sign_core(const params *p, int32_t (*ws)[N], uint8_t *sig, const uint8_t *pre, size_t prelen,
                     const uint8_t *msg, size_t msglen, const uint8_t *ext_mu, const uint8_t rnd[32],
                     const uint8_t *sk, unsigned *attempts)
{
    const unsigned k = p->k, l = p->l;
    int32_t (*s1h)[N] = ws, (*s2h)[N] = ws + l, (*y)[N] = ws + l + k, (*w)[N] = ws + 2 * l + k;
    int32_t *ch = ws[2 * l + 2 * k], *t1 = ws[2 * l + 2 * k + 1], *t2 = ws[2 * l + 2 * k + 2];
    const uint8_t *rho = sk, *key = sk + SEEDBYTES, *tr = sk + 2 * SEEDBYTES;
    uint8_t mu[CRHBYTES], rhopp[CRHBYTES], ctilde[64], w1buf[N * 6 / 8];
    uint8_t hbits[KMAX][N / 8];                                   /* hint bits, indexed by public position */
    qs_keccak st;
    int rc = QS_PQC_ELOOP;
    unsigned iter = 0;

    compute_mu(mu, tr, pre, prelen, msg, msglen, ext_mu);
    qs_shake256_init(&st);                                          /* rho'' = H(K || rnd || mu, 64) */
    qs_keccak_absorb(&st, key, SEEDBYTES);
    qs_keccak_absorb(&st, rnd, 32);
    qs_keccak_absorb(&st, mu, CRHBYTES);
    qs_keccak_squeeze(&st, rhopp, CRHBYTES);

    for (unsigned j = 0; j < l; j++) {
        unpack_poly(s1h[j], sk + sk_s1(p) + (size_t)j * 32u * p->eta_bits, p->eta_bits, p->eta, -1);
        ntt(s1h[j]);
    }
    for (unsigned i = 0; i < k; i++) {
        unpack_poly(s2h[i], sk + sk_s2(p) + (size_t)i * 32u * p->eta_bits, p->eta_bits, p->eta, -1);
        ntt(s2h[i]);
    }

    while (iter < QS_MLDSA_MAX_ATTEMPTS) {
        unsigned kappa = iter * l;
        iter++;

        /* w = NTT^-1(A o NTT(y)) */
        for (unsigned j = 0; j < l; j++) {
            sample_mask(y[j], rhopp, kappa + j, p);
            for (unsigned n = 0; n < N; n++) t1[n] = y[j][n];
            ntt(t1);
            for (unsigned i = 0; i < k; i++) {
                sample_a(t2, rho, i, j);
                if (j == 0) poly_pointwise(w[i], t2, t1);
                else poly_pointwise_acc(w[i], t2, t1);
            }
        }
        /* c~ = H(mu || w1Encode(w1), lambda/4) */
        qs_shake256_init(&st);
        qs_keccak_absorb(&st, mu, CRHBYTES);
        for (unsigned i = 0; i < k; i++) {
            poly_reduce(w[i]);
            invntt_tomont(w[i]);
            poly_freeze(w[i]);
            for (unsigned n = 0; n < N; n++) {
                int32_t r0;
                t1[n] = decompose(&r0, w[i][n], p->gamma2);
            }
            pack_poly(w1buf, t1, p->w1_bits, 0, 1);
            qs_keccak_absorb(&st, w1buf, 32u * p->w1_bits);
        }
        qs_keccak_squeeze(&st, ctilde, p->ctb);
        sample_in_ball(ch, ctilde, p, 1);
        ntt(ch);

        /* z = y + <<c s1>>, ||z|| < gamma1 - beta */
        int32_t bad = 0;
        for (unsigned j = 0; j < l; j++) {
            poly_pointwise(t1, ch, s1h[j]);
            invntt_tomont(t1);
            for (unsigned n = 0; n < N; n++) y[j][n] = reduce32(y[j][n] + t1[n]);
            bad |= poly_exceeds(y[j], p->gamma1 - p->beta);
        }
        if (bad) continue;

        /* w <- w - <<c s2>> (mod q), ||LowBits(w - c s2)|| < gamma2 - beta */
        for (unsigned i = 0; i < k; i++) {
            poly_pointwise(t1, ch, s2h[i]);
            invntt_tomont(t1);
            for (unsigned n = 0; n < N; n++) {
                int32_t r0, v = freeze(w[i][n] - t1[n]);
                w[i][n] = v;
                (void)decompose(&r0, v, p->gamma2);
                int32_t m = r0 >> 31;
                r0 = (r0 ^ m) - m;
                bad |= (p->gamma2 - p->beta - 1 - r0) >> 31;
            }
        }
        if (bad) continue;

        /* <<c t0>>, ||ct0|| < gamma2; h = MakeHint(-ct0, w - cs2 + ct0): HighBits(w - cs2 + ct0) != HighBits(w - cs2) */
        uint32_t count = 0;
        for (unsigned i = 0; i < k; i++) {
            unpack_poly(t1, sk + sk_t0(p) + (size_t)i * 416u, 13, 1 << (D - 1), -1);
            ntt(t1);
            poly_pointwise(t2, ch, t1);
            invntt_tomont(t2);
            poly_reduce(t2);
            bad |= poly_exceeds(t2, p->gamma2);
            for (unsigned n = 0; n < N; n += 8) {
                uint32_t byte = 0;
                for (unsigned b = 0; b < 8; b++) {
                    int32_t r0, v1 = decompose(&r0, w[i][n + b], p->gamma2);
                    int32_t u1 = decompose(&r0, freeze(w[i][n + b] + t2[n + b]), p->gamma2);
                    uint32_t h = (uint32_t)((u1 ^ v1) | -(u1 ^ v1)) >> 31;   /* 1 when u1 != v1 */
                    byte |= h << b;
                    count += h;
                }
                hbits[i][n / 8] = (uint8_t)byte;
            }
        }
        if (bad || count > p->omega) continue;

        /* Accepted: from here on z and h are the (public) signature. sigEncode(c~, z mod+- q, h) */
        copy_bytes(sig, ctilde, p->ctb);
        for (unsigned j = 0; j < l; j++)
            pack_poly(sig + p->ctb + (size_t)j * 32u * p->z_bits, y[j], p->z_bits, p->gamma1, -1);
        uint8_t *hs = sig + sig_h(p);
        unsigned at = 0;
        zero_bytes(hs, p->omega + k);
        for (unsigned i = 0; i < k; i++) {
            for (unsigned n = 0; n < N; n++)
                if (hbits[i][n / 8] >> (n % 8) & 1) hs[at++] = (uint8_t)n;
            hs[p->omega + i] = (uint8_t)at;
        }
        rc = QS_PQC_OK;
        break;
    }
    if (rc != QS_PQC_OK) zero_bytes(sig, sig_bytes(p));
    if (attempts) *attempts = iter;
    qs_pqc_wipe(&st, sizeof st);
    qs_pqc_wipe(mu, sizeof mu);
    qs_pqc_wipe(rhopp, sizeof rhopp);
    qs_pqc_wipe(ctilde, sizeof ctilde);
    qs_pqc_wipe(w1buf, sizeof w1buf);
    qs_pqc_wipe(hbits, sizeof hbits);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------
 * Verify_internal (Alg 8), public data only. Workspace: zhat[l], chat, acc, tmp. */

#define VERIFY_WS(k, l) ((l) + 3)

/* HintBitUnpack's malformation checks (the hints themselves are read row by row later). */
static int hints_valid(const params *p, const uint8_t *hs)
{
    unsigned idx = 0;
    for (unsigned i = 0; i < p->k; i++) {
        unsigned end = hs[p->omega + i];
        if (end < idx || end > p->omega) return 0;
        for (unsigned t = idx; t < end; t++)
            if (t > idx && hs[t - 1] >= hs[t]) return 0;     /* strictly increasing within a row */
        idx = end;
    }
    for (unsigned t = idx; t < p->omega; t++)
        if (hs[t]) return 0;
    return 1;
}

static int verify_core(const params *p, int32_t (*ws)[N], const uint8_t *sig, const uint8_t *pre, size_t prelen,
                       const uint8_t *msg, size_t msglen, const uint8_t *ext_mu, const uint8_t *pk)
{
    const unsigned k = p->k, l = p->l;
    int32_t (*zh)[N] = ws, *ch = ws[l], *acc = ws[l + 1], *tmp = ws[l + 2];
    const uint8_t *rho = pk, *hs = sig + sig_h(p);
    uint8_t tr[TRBYTES], mu[CRHBYTES], ctilde[64], w1buf[N * 6 / 8];
    qs_keccak st;

    if (!hints_valid(p, hs)) return QS_PQC_EVERIFY;
    for (unsigned j = 0; j < l; j++) {
        unpack_poly(zh[j], sig + p->ctb + (size_t)j * 32u * p->z_bits, p->z_bits, p->gamma1, -1);
        if (poly_exceeds(zh[j], p->gamma1 - p->beta)) return QS_PQC_EVERIFY;
        ntt(zh[j]);
    }
    qs_shake256(tr, TRBYTES, pk, pk_bytes(p));
    compute_mu(mu, tr, pre, prelen, msg, msglen, ext_mu);
    sample_in_ball(ch, sig, p, 0);
    ntt(ch);

    qs_shake256_init(&st);
    qs_keccak_absorb(&st, mu, CRHBYTES);
    unsigned hidx = 0;
    for (unsigned i = 0; i < k; i++) {
        /* w'approx[i] = NTT^-1(sum_j A[i][j] o zhat[j] - chat o NTT(t1[i] 2^d)) */
        sample_a(tmp, rho, i, 0);
        poly_pointwise(acc, tmp, zh[0]);
        for (unsigned j = 1; j < l; j++) {
            sample_a(tmp, rho, i, j);
            poly_pointwise_acc(acc, tmp, zh[j]);
        }
        unpack_poly(tmp, pk + SEEDBYTES + (size_t)i * 320u, 10, 0, 1);
        for (unsigned n = 0; n < N; n++) tmp[n] <<= D;
        ntt(tmp);
        for (unsigned n = 0; n < N; n++) acc[n] -= mont_reduce((int64_t)ch[n] * tmp[n]);
        poly_reduce(acc);
        invntt_tomont(acc);
        poly_freeze(acc);
        /* w1' = UseHint(h[i], w'approx[i]) */
        unsigned end = hs[p->omega + i];
        for (unsigned n = 0; n < N; n++) {
            int h = hidx < end && hs[hidx] == n;
            hidx += (unsigned)h;
            tmp[n] = use_hint(acc[n], h, p->gamma2);
        }
        pack_poly(w1buf, tmp, p->w1_bits, 0, 1);
        qs_keccak_absorb(&st, w1buf, 32u * p->w1_bits);
    }
    qs_keccak_squeeze(&st, ctilde, p->ctb);
    uint8_t diff = 0;
    for (unsigned t = 0; t < p->ctb; t++) diff |= (uint8_t)(ctilde[t] ^ sig[t]);
    return diff ? QS_PQC_EVERIFY : QS_PQC_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * Per-parameter-set entry points: each declares a workspace of exactly its own size (the stack budgets in
 * mldsa.h are per set), runs the core and wipes the workspace. */

#define DEFINE_SET(S, K_, L_)                                                                                  \
    static NOINLINE int keygen_##S(uint8_t *pk, uint8_t *sk, const uint8_t xi[32])                             \
    {                                                                                                          \
        int32_t ws[KEYGEN_WS(K_, L_)][N];                                                                      \
        int rc = keygen_core(&P##S, ws, pk, sk, xi);                                                           \
        qs_pqc_wipe(ws, sizeof ws);                                                                            \
        return rc;                                                                                             \
    }                                                                                                          \
    static NOINLINE int sign_##S(uint8_t *sig, const uint8_t *pre, size_t prelen, const uint8_t *msg,          \
                                 size_t msglen, const uint8_t *mu, const uint8_t rnd[32], const uint8_t *sk,   \
                                 unsigned *attempts)                                                           \
    {                                                                                                          \
        int32_t ws[SIGN_WS(K_, L_)][N];                                                                        \
        int rc = sign_core(&P##S, ws, sig, pre, prelen, msg, msglen, mu, rnd, sk, attempts);                   \
        qs_pqc_wipe(ws, sizeof ws);                                                                            \
        return rc;                                                                                             \
    }                                                                                                          \
    static NOINLINE int verify_##S(const uint8_t *sig, const uint8_t *pre, size_t prelen, const uint8_t *msg,  \
                                   size_t msglen, const uint8_t *mu, const uint8_t *pk)                        \
    {                                                                                                          \
        int32_t ws[VERIFY_WS(K_, L_)][N];                                                                      \
        return verify_core(&P##S, ws, sig, pre, prelen, msg, msglen, mu, pk);                                  \
    }

DEFINE_SET(44, 4, 4)
DEFINE_SET(65, 6, 5)
DEFINE_SET(87, 8, 7)

int qs_mldsa_keygen(int lvl, uint8_t *pk, uint8_t *sk, const uint8_t xi[32])
{
    if (!get_params(lvl)) return QS_PQC_EPARAM;
    if (!pk || !sk || !xi) return QS_PQC_EINPUT;
    return lvl == 44 ? keygen_44(pk, sk, xi) : lvl == 65 ? keygen_65(pk, sk, xi) : keygen_87(pk, sk, xi);
}

int qs_mldsa_sign_internal(int lvl, uint8_t *sig, const uint8_t *pre, size_t prelen, const uint8_t *msg, size_t msglen,
                           const uint8_t *mu, const uint8_t rnd[32], const uint8_t *sk, unsigned *attempts)
{
    if (attempts) *attempts = 0;
    if (!get_params(lvl)) return QS_PQC_EPARAM;
    if (!sig || !rnd || !sk || (!mu && ((prelen && !pre) || (msglen && !msg)))) return QS_PQC_EINPUT;
    return lvl == 44   ? sign_44(sig, pre, prelen, msg, msglen, mu, rnd, sk, attempts)
           : lvl == 65 ? sign_65(sig, pre, prelen, msg, msglen, mu, rnd, sk, attempts)
                       : sign_87(sig, pre, prelen, msg, msglen, mu, rnd, sk, attempts);
}

int qs_mldsa_verify_internal(int lvl, const uint8_t *sig, size_t siglen, const uint8_t *pre, size_t prelen,
                             const uint8_t *msg, size_t msglen, const uint8_t *mu, const uint8_t *pk)
{
    const params *p = get_params(lvl);
    if (!p) return QS_PQC_EPARAM;
    if (!sig || !pk || (!mu && ((prelen && !pre) || (msglen && !msg)))) return QS_PQC_EINPUT;
    if (siglen != sig_bytes(p)) return QS_PQC_EVERIFY;
    return lvl == 44   ? verify_44(sig, pre, prelen, msg, msglen, mu, pk)
           : lvl == 65 ? verify_65(sig, pre, prelen, msg, msglen, mu, pk)
                       : verify_87(sig, pre, prelen, msg, msglen, mu, pk);
}

/* M' prefix of pure ML-DSA: 0 || |ctx| || ctx */
static int pure_prefix(uint8_t pre[2 + QS_MLDSA_CTX_MAX], const uint8_t *ctx, size_t ctxlen)
{
    if (ctxlen > QS_MLDSA_CTX_MAX || (ctxlen && !ctx)) return QS_PQC_EINPUT;
    pre[0] = 0;
    pre[1] = (uint8_t)ctxlen;
    copy_bytes(pre + 2, ctx, ctxlen);
    return QS_PQC_OK;
}

int qs_mldsa_sign(int lvl, uint8_t *sig, const uint8_t *msg, size_t mlen, const uint8_t *ctx, size_t ctxlen,
                  const uint8_t rnd[32], const uint8_t *sk, unsigned *attempts)
{
    uint8_t pre[2 + QS_MLDSA_CTX_MAX];
    if (attempts) *attempts = 0;
    if (!get_params(lvl)) return QS_PQC_EPARAM;
    int rc = pure_prefix(pre, ctx, ctxlen);
    if (rc != QS_PQC_OK) return rc;
    return qs_mldsa_sign_internal(lvl, sig, pre, 2 + ctxlen, msg, mlen, 0, rnd, sk, attempts);
}

int qs_mldsa_verify(int lvl, const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t mlen,
                    const uint8_t *ctx, size_t ctxlen, const uint8_t *pk)
{
    uint8_t pre[2 + QS_MLDSA_CTX_MAX];
    if (!get_params(lvl)) return QS_PQC_EPARAM;
    int rc = pure_prefix(pre, ctx, ctxlen);
    if (rc != QS_PQC_OK) return rc;
    return qs_mldsa_verify_internal(lvl, sig, siglen, pre, 2 + ctxlen, msg, mlen, 0, pk);
}
