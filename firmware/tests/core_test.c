/* Host unit tests of the portable core (+ the OpenSSL crypto port and the POSIX port underneath). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/crypto_port.h"
#include "../core/hkdf.h"
#include "../core/node.h"
#include "../core/port.h"
#include "../core/proto.h"
#include "../core/qs.h"
#include "../core/record.h"
#include "../ports/posix/posix.h"

static int g_fail, g_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        g_checks++;                                                                  \
        if (!(cond)) { g_fail++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static int eqhex(const uint8_t *b, size_t n, const char *h)
{
    uint8_t t[256];
    size_t m = unhex(h, t);
    return m == n && memcmp(t, b, n) == 0;
}

/* ---- CRC / frames / lines ---------------------------------------------------------------------------------- */
static void test_crc_frames(void)
{
    CHECK(qs_crc16("123456789", 9) == 0x29B1);
    CHECK(qs_crc16("", 0) == 0xFFFF);

    char line[128];
    const char *json = "{\"id\":1,\"cmd\":\"ping\"}";
    snprintf(line, sizeof line, "%s*%04X", json, qs_crc16(json, strlen(json)));
    size_t jl = 0;
    CHECK(qs_frame_check(line, strlen(line), &jl) == QS_FRAME_OK && jl == strlen(json));
    line[3] = 'X';
    CHECK(qs_frame_check(line, strlen(line), &jl) == QS_FRAME_BADCRC);
    snprintf(line, sizeof line, "%s*%04x", json, 0xabcd);
    CHECK(qs_frame_check(line, strlen(line), &jl) == QS_FRAME_NONE);   /* lowercase: not a frame */
    CHECK(qs_frame_check("I (123) qslab: hi", 17, &jl) == QS_FRAME_NONE);
    CHECK(qs_frame_check("{\"a\":1}", 7, &jl) == QS_FRAME_NONE);
    CHECK(qs_frame_check("*29B1", 5, &jl) == QS_FRAME_NONE);
    CHECK(qs_frame_check("", 0, &jl) == QS_FRAME_NONE);

    /* writer output is a valid frame */
    char buf[256];
    qs_jw w;
    qs_jw_init(&w, buf, sizeof buf);
    qs_jw_begin(&w);
    qs_jw_uint(&w, "id", 7);
    qs_jw_str(&w, "msg", "a\"b\\c\n\x01\xc3\xa9");
    qs_jw_obj(&w, "t");
    qs_jw_fixed(&w, "x", 1.25, 1);
    qs_jw_fixed(&w, "y", 0.0 / 0.0, 1);
    qs_jw_end(&w);
    qs_jw_arr(&w, "l");
    qs_jw_str(&w, NULL, "a");
    qs_jw_int(&w, NULL, -3);
    qs_jw_end_arr(&w);
    qs_jw_bool(&w, "ok", 1);
    qs_jw_end(&w);
    size_t n = qs_jw_frame(&w);
    CHECK(n > 0 && buf[n - 1] == '\n');
    const char *expect = "{\"id\":7,\"msg\":\"a\\\"b\\\\c\\n\\u0001??\",\"t\":{\"x\":1.2,\"y\":0.0},\"l\":[\"a\",-3],\"ok\":true}";
    CHECK(n == strlen(expect) + 6 && memcmp(buf, expect, strlen(expect)) == 0);
    CHECK(qs_frame_check(buf, n - 1, &jl) == QS_FRAME_OK);
    qs_jobj o;
    CHECK(qs_json_parse(&o, buf, jl) == 0);
    /* overflow never writes past the buffer and yields no frame */
    char small[16];
    qs_jw_init(&w, small, sizeof small);
    qs_jw_begin(&w);
    qs_jw_str(&w, "long", "0123456789abcdef");
    qs_jw_end(&w);
    CHECK(qs_jw_frame(&w) == 0);
}

static void test_lines(void)
{
    static qs_line l;
    size_t len = 0;
    qs_line_init(&l);
    int ev = 0;
    const char *s = "abc\r\n";
    for (const char *p = s; *p; p++) ev = qs_line_feed(&l, (uint8_t)*p, &len);
    CHECK(ev == QS_LINE_READY && len == 3 && strcmp(l.buf, "abc") == 0);
    /* 1023 bytes + "\n" = 1024: accepted */
    for (int i = 0; i < 1023; i++) CHECK(qs_line_feed(&l, 'x', &len) == QS_LINE_NONE);
    CHECK(qs_line_feed(&l, '\n', &len) == QS_LINE_READY && len == 1023);
    /* 1024 bytes before "\n": too long, reported once, rest discarded, next line fine */
    int toolong = 0, ready = 0;
    for (int i = 0; i < 3000; i++) {
        ev = qs_line_feed(&l, 'y', &len);
        toolong += ev == QS_LINE_TOOLONG;
        ready += ev == QS_LINE_READY;
    }
    CHECK(toolong == 1 && ready == 0);
    CHECK(qs_line_feed(&l, '\n', &len) == QS_LINE_NONE);
    CHECK(qs_line_feed(&l, 'z', &len) == QS_LINE_NONE);
    CHECK(qs_line_feed(&l, '\n', &len) == QS_LINE_READY && len == 1 && l.buf[0] == 'z');
    CHECK(qs_line_feed(&l, '\n', &len) == QS_LINE_READY && len == 0);
}

/* ---- JSON reader -------------------------------------------------------------------------------------------- */
static void test_json_good(void)
{
    static qs_jobj o;
    const char *s = " {\"id\":42,\"cmd\":\"hs\",\"ok\":true,\"no\":false,\"nil\":null,"
                    "\"s\":\"a\\\"b\\\\\\/\\u00e9\\ud83d\\ude00\\n\",\"nested\":{\"a\":[1,2,{\"b\":null}],\"c\":\"}\"},"
                    "\"f\":-1.5e3,\"big\":18446744073709551616,\"min\":-9223372036854775808,\"z\":0,\"id\":43} ";
    CHECK(qs_json_parse(&o, s, strlen(s)) == 0);
    const qs_jmember *m = qs_json_get(&o, "id");
    CHECK(m && m->type == QS_JT_INT && m->i == 43);   /* last duplicate wins, like JSON.parse */
    m = qs_json_get(&o, "cmd");
    CHECK(m && m->type == QS_JT_STR && strcmp(m->s, "hs") == 0);
    m = qs_json_get(&o, "ok");
    CHECK(m && m->type == QS_JT_BOOL && m->b == 1);
    m = qs_json_get(&o, "no");
    CHECK(m && m->type == QS_JT_BOOL && m->b == 0);
    m = qs_json_get(&o, "nil");
    CHECK(m && m->type == QS_JT_NULL);
    m = qs_json_get(&o, "s");
    CHECK(m && m->type == QS_JT_STR && strcmp(m->s, "a\"b\\/\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    m = qs_json_get(&o, "nested");
    CHECK(m && m->type == QS_JT_OBJ);
    m = qs_json_get(&o, "f");
    CHECK(m && m->type == QS_JT_NUM);
    m = qs_json_get(&o, "big");
    CHECK(m && m->type == QS_JT_NUM);
    m = qs_json_get(&o, "min");
    CHECK(m && m->type == QS_JT_INT && m->i == INT64_MIN);
    CHECK(qs_json_get(&o, "missing") == NULL);
    CHECK(qs_json_parse(&o, "{}", 2) == 0 && o.n == 0);
    CHECK(qs_json_parse(&o, "{\"a\":\"x\\u0000y\"}", 16) == 0 && o.m[0].slen == 3);
    CHECK(qs_json_parse(&o, "{\"a\":\"\\udc00\"}", 14) == 0 && strcmp(o.m[0].s, "\xef\xbf\xbd") == 0);
}

static void test_json_bad(void)
{
    static qs_jobj o;
    static const char *const bad[] = {
        "", " ", "{", "}", "[1]", "\"a\"", "1", "null", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":1}x", "{\"a\":1}}",
        "{\"a\":tru}", "{\"a\":nul}", "{\"a\":falsey}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"abc}",
        "{\"a\":\"\x01\"}", "{a:1}", "{'a':1}", "{\"a\":[1,]}", "{\"a\":[1}", "{\"a\":{\"b\"}}", "{\"a\":{1:2}}",
        "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\" :: 1}", "{\"a\":\"\\",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = qs_json_parse(&o, bad[i], strlen(bad[i]));
        if (rc == 0) fprintf(stderr, "accepted bad JSON #%zu: %s\n", i, bad[i]);
        CHECK(rc != 0);
    }
    CHECK(qs_json_parse(&o, NULL, 0) != 0);
    /* deep nesting is bounded */
    char deep[400];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"a\":");
    for (int i = 0; i < 100; i++) deep[n++] = '[';
    for (int i = 0; i < 100; i++) deep[n++] = ']';
    deep[n++] = '}';
    CHECK(qs_json_parse(&o, deep, n) != 0);
    /* too many members */
    char many[1024];
    n = 0;
    many[n++] = '{';
    for (int i = 0; i < 40; i++) n += (size_t)sprintf(many + n, "%s\"k%d\":%d", i ? "," : "", i, i);
    many[n++] = '}';
    CHECK(qs_json_parse(&o, many, n) != 0);
    /* arena exhaustion with a huge string (longer than any request line) fails cleanly */
    static char huge[6000];
    memset(huge, 'a', sizeof huge);
    memcpy(huge, "{\"a\":\"", 6);
    memcpy(huge + sizeof huge - 2, "\"}", 2);
    CHECK(qs_json_parse(&o, huge, sizeof huge) != 0);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Mutation fuzz: must never crash / overrun (run `make asan` to have the sanitizers watch). */
static void test_json_fuzz(void)
{
    static const char *const seeds[] = {
        "{\"id\":9,\"cmd\":\"hs\",\"suite\":\"x25519\",\"host\":\"127.0.0.1\",\"port\":41533,\"n\":100,\"pin\":\"ab\"}",
        "{\"a\":[1,{\"b\":\"\\ud83d\\ude00\"}],\"c\":-1.5e-3,\"d\":true,\"e\":null}",
    };
    static qs_jobj o;
    char buf[1100];
    int accepted = 0;
    for (int it = 0; it < 30000; it++) {
        const char *s = seeds[it % 2];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + (int)(rnd() % 6);
        for (int k = 0; k < muts; k++) {
            uint32_t r = rnd();
            size_t pos = n ? r % n : 0;
            switch ((r >> 16) % 4) {
            case 0: buf[pos] = (char)rnd(); break;
            case 1: if (n > 1) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;
            case 2: if (n < sizeof buf - 1) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = "{}[]\",:\\u0e-"[rnd() % 13]; n++; } break;
            default: n = pos; break;
            }
        }
        /* the parse must only look at buf[0..n): give it an exact-size heap copy under ASan */
        char *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        if (qs_json_parse(&o, copy, n) == 0) {
            accepted++;
            for (int i = 0; i < o.n; i++) CHECK(o.m[i].key != NULL);
        }
        free(copy);
    }
    /* random bytes */
    for (int it = 0; it < 20000; it++) {
        size_t n = rnd() % 64;
        for (size_t i = 0; i < n; i++) buf[i] = (char)rnd();
        if (n) buf[0] = '{';
        qs_json_parse(&o, buf, n);
    }
    CHECK(accepted > 0);
}

/* ---- HKDF (RFC 5869) ---------------------------------------------------------------------------------------- */
static void test_hkdf(void)
{
    uint8_t ikm[80], salt[80], info[80], prk[32], okm[82];
    size_t il, sl, nl;
    /* test case 1 */
    il = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", ikm);
    sl = unhex("000102030405060708090a0b0c", salt);
    nl = unhex("f0f1f2f3f4f5f6f7f8f9", info);
    CHECK(qs_hkdf_extract(salt, sl, ikm, il, prk) == QS_OK);
    CHECK(eqhex(prk, 32, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"));
    CHECK(qs_hkdf_expand(prk, 32, info, nl, okm, 42) == QS_OK);
    CHECK(eqhex(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
    /* split info gives the same result */
    CHECK(qs_hkdf_expand2(prk, 32, info, 4, info + 4, nl - 4, okm, 42) == QS_OK);
    CHECK(eqhex(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
    /* test case 3: no salt, no info */
    CHECK(qs_hkdf_extract(NULL, 0, ikm, il, prk) == QS_OK);
    CHECK(eqhex(prk, 32, "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"));
    CHECK(qs_hkdf_expand(prk, 32, NULL, 0, okm, 42) == QS_OK);
    CHECK(eqhex(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"));
    /* ETSI TS 103 744 CatKDF, HKDF-SHA-256 (HANDSHAKE.md §11.3): reference vector CID 1721 (X25519 + ML-KEM-768) of
     * github.com/etsi-forge/cyber.103744_QHKEX main.c @ 026e1ed6 (strkmcat_hkdf[4]); PRK = Extract(label, psk | k1 | k2)
     * with psk empty, key = Expand(PRK, context, 16). The context (SHA-256 of u32|info|u32|MA|u32|MB) is recomputed
     * from the vector's MA / MB in controller/test/handshake-qkd.test.ts. */
    il = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
               "e3e4f4e9d4f5c9ae03836bb9266c50b033285ace9bc56f73817ce19679d1429a", ikm);
    sl = unhex("212233445566778899aabbccddeefe1121223344556677861223344556677889", salt);
    nl = unhex("43684d7807e0b60507d4a921c900d6498f5cb110c579179ce7268abcc508afc7", info);
    CHECK(qs_hkdf_extract(salt, sl, ikm, il, prk) == QS_OK);
    CHECK(qs_hkdf_expand(prk, 32, info, nl, okm, 16) == QS_OK);
    CHECK(eqhex(okm, 16, "701675524e4986a391afefbb604aa63d"));
    /* HMAC with a long key (RFC 4231 test case 6) */
    uint8_t key[131], mac[32];
    memset(key, 0xaa, sizeof key);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    CHECK(qs_hmac_sha256(key, sizeof key, (const uint8_t *)m6, strlen(m6), mac) == QS_OK);
    CHECK(eqhex(mac, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    uint8_t h[32];
    CHECK(qs_sha256("abc", 3, h) == QS_OK);
    CHECK(eqhex(h, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    qs_sha256_ctx *s = qs_sha256_new();
    qs_sha256_update(s, "a", 1);
    qs_sha256_ctx *d = qs_sha256_dup(s);
    qs_sha256_update(s, "bc", 2);
    qs_sha256_update(d, "bc", 2);
    uint8_t h1[32], h2[32];
    CHECK(qs_sha256_final(s, h1) == QS_OK && qs_sha256_final(d, h2) == QS_OK);
    CHECK(memcmp(h1, h, 32) == 0 && memcmp(h2, h, 32) == 0);
    qs_sha256_free(s);
    qs_sha256_free(d);
}

/* ---- AEAD port ------------------------------------------------------------------------------------------------ */
static void test_aead(void)
{
    uint8_t key[32], nonce[12], aad[32], pt[128], ct[128], tag[16], out[128];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0x80 + i);
    unhex("070000004041424344454647", nonce);
    size_t al = unhex("50515253c0c1c2c3c4c5c6c7", aad);
    const char *lad = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
                      "sunscreen would be it.";
    size_t pl = strlen(lad);
    memcpy(pt, lad, pl);
    qs_aead *a = qs_aead_new(QS_AEAD_CHACHA20POLY1305, key);
    CHECK(a != NULL);
    /* twice on the same context (the key is set once per epoch, the nonce per record) */
    for (int rep = 0; rep < 2; rep++) {
        CHECK(qs_aead_seal(a, nonce, aad, al, pt, pl, ct, tag) == QS_OK);
        CHECK(eqhex(tag, 16, "1ae10b594f09e26a7e902ecbd0600691"));
        CHECK(eqhex(ct, 16, "d31a8d34648e60db7b86afbc53ef7ec2"));
        CHECK(qs_aead_open(a, nonce, aad, al, ct, pl, tag, out) == QS_OK && memcmp(out, pt, pl) == 0);
    }
    ct[5] ^= 1;
    CHECK(qs_aead_open(a, nonce, aad, al, ct, pl, tag, out) == QS_E_BADMAC);
    ct[5] ^= 1;
    CHECK(qs_aead_open(a, nonce, aad, al, ct, pl, tag, out) == QS_OK);
    qs_aead_free(a);
    /* AES-256-GCM, NIST test case 16 */
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key);
    unhex("cafebabefacedbaddecaf888", nonce);
    pl = unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt);
    al = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
    a = qs_aead_new(QS_AEAD_AES256GCM, key);
    CHECK(a != NULL);
    for (int rep = 0; rep < 2; rep++) {
        CHECK(qs_aead_seal(a, nonce, aad, al, pt, pl, ct, tag) == QS_OK);
        CHECK(eqhex(ct, pl, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"));
        CHECK(eqhex(tag, 16, "76fc6ece0f4e1768cddf8853bb2d551b"));
    }
    tag[0] ^= 1;
    CHECK(qs_aead_open(a, nonce, aad, al, ct, pl, tag, out) == QS_E_BADMAC);
    qs_aead_free(a);
    CHECK(qs_aead_new(3, key) == NULL);
}

static void test_kex(void)
{
    qs_kex *a = NULL, *b = NULL;
    uint8_t pa[65], pb[65], za[32], zb[32];
    CHECK(qs_x25519_keygen(&a, pa) == QS_OK && qs_x25519_keygen(&b, pb) == QS_OK);
    CHECK(qs_x25519_derive(a, pb, za) == QS_OK && qs_x25519_derive(b, pa, zb) == QS_OK && memcmp(za, zb, 32) == 0);
    uint8_t zero[32] = { 0 };
    CHECK(qs_x25519_derive(a, zero, za) != QS_OK);   /* small-order point: all-zero secret refused */
    qs_kex_free(a);
    qs_kex_free(b);
    CHECK(qs_p256_keygen(&a, pa) == QS_OK && qs_p256_keygen(&b, pb) == QS_OK && pa[0] == 4);
    CHECK(qs_p256_derive(a, pb, za) == QS_OK && qs_p256_derive(b, pa, zb) == QS_OK && memcmp(za, zb, 32) == 0);
    pb[64] ^= 1;   /* off the curve */
    CHECK(qs_p256_derive(a, pb, za) == QS_E_DECODE);
    qs_kex_free(a);
    qs_kex_free(b);
}

/* ---- record layer ---------------------------------------------------------------------------------------------- */
static void test_record(void)
{
    uint8_t s0[32], pt[64], body[16][64 + QS_RL_OVERHEAD], out[64];
    size_t ptlen;
    uint64_t seq;
    for (int i = 0; i < 32; i++) s0[i] = (uint8_t)i;
    for (int aead = QS_AEAD_AES256GCM; aead <= QS_AEAD_CHACHA20POLY1305; aead++) {
        qs_rl tx, rx;
        CHECK(qs_rl_init(&tx, aead, 3, s0) == QS_OK);
        CHECK(qs_rl_init(&rx, aead, 3, s0) == QS_OK);
        for (int i = 0; i < 10; i++) {
            memset(pt, i, sizeof pt);
            CHECK(qs_rl_seal(&tx, pt, sizeof pt, body[i]) == QS_OK);
            CHECK(body[i][0] == 0 && body[i][1] == i / 3 && body[i][9] == i);   /* epoch = floor(seq / K) */
        }
        /* epoch ratchet consistent: the sender's epoch-3 secret is three "upd" steps from secret_0 */
        uint8_t e[32], nx[32];
        memcpy(e, s0, 32);
        for (int k = 0; k < 3; k++) { qs_rl_next_secret(e, nx); memcpy(e, nx, 32); }
        CHECK(tx.epoch == 3 && memcmp(tx.secret, e, 32) == 0);
        uint8_t key[32], iv[12];
        qs_rl_epoch_keys(e, key, iv);
        CHECK(memcmp(tx.iv, iv, 12) == 0);

        /* in order: all open */
        CHECK(qs_rl_open(&rx, body[0], sizeof body[0], out, &ptlen, &seq) == QS_OK && ptlen == 64 && out[0] == 0);
        /* replay of seq 0 rejected */
        CHECK(qs_rl_open(&rx, body[0], sizeof body[0], out, &ptlen, &seq) == QS_E_REPLAY);
        /* tampered tag and ciphertext rejected; the window does not move */
        uint8_t t[64 + QS_RL_OVERHEAD];
        memcpy(t, body[1], sizeof t);
        t[sizeof t - 1] ^= 0x80;
        CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_E_BADMAC);
        memcpy(t, body[1], sizeof t);
        t[QS_RL_HDR] ^= 1;
        CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_E_BADMAC);
        /* wrong epoch field */
        memcpy(t, body[1], sizeof t);
        t[1] = 1;
        CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_E_EPOCH);
        CHECK(qs_rl_open(&rx, body[1], sizeof body[1], out, &ptlen, &seq) == QS_OK && out[0] == 1);
        /* skip ahead two epochs (seq 7, epoch 2): derived forward, then seq 5 (epoch 1) is retired */
        CHECK(qs_rl_open(&rx, body[7], sizeof body[7], out, &ptlen, &seq) == QS_OK && out[0] == 7 && rx.epoch == 2);
        CHECK(qs_rl_open(&rx, body[5], sizeof body[5], out, &ptlen, &seq) == QS_E_EPOCH);
        CHECK(qs_rl_open(&rx, body[6], sizeof body[6], out, &ptlen, &seq) == QS_OK && out[0] == 6);
        CHECK(qs_rl_open(&rx, body[8], sizeof body[8], out, &ptlen, &seq) == QS_OK);
        CHECK(qs_rl_open(&rx, body[7], sizeof body[7], out, &ptlen, &seq) == QS_E_REPLAY);
        /* forged record of a later epoch does not retire the current keys */
        memcpy(t, body[9], sizeof t);
        t[QS_RL_HDR + 3] ^= 1;
        CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_E_BADMAC && rx.epoch == 2);
        CHECK(qs_rl_open(&rx, body[9], sizeof body[9], out, &ptlen, &seq) == QS_OK && rx.epoch == 3);
        CHECK(qs_rl_open(&rx, body[9], 10, out, &ptlen, &seq) == QS_E_DECODE);
        qs_rl_free(&tx);
        qs_rl_free(&rx);
    }
    /* window of 64: K = 0, seq far ahead, then old ones */
    qs_rl tx, rx;
    static uint8_t bodies[80][8 + QS_RL_OVERHEAD];
    CHECK(qs_rl_init(&tx, QS_AEAD_AES256GCM, 0, s0) == QS_OK && qs_rl_init(&rx, QS_AEAD_AES256GCM, 0, s0) == QS_OK);
    for (int i = 0; i < 80; i++) CHECK(qs_rl_seal(&tx, pt, 8, bodies[i]) == QS_OK && bodies[i][1] == 0);
    CHECK(qs_rl_open(&rx, bodies[70], sizeof bodies[70], out, &ptlen, &seq) == QS_OK);
    CHECK(qs_rl_open(&rx, bodies[6], sizeof bodies[6], out, &ptlen, &seq) == QS_E_REPLAY);   /* 6 <= 70 - 64 */
    CHECK(qs_rl_open(&rx, bodies[7], sizeof bodies[7], out, &ptlen, &seq) == QS_OK);         /* inside the window */
    CHECK(qs_rl_open(&rx, bodies[7], sizeof bodies[7], out, &ptlen, &seq) == QS_E_REPLAY);
    CHECK(qs_rl_open(&rx, bodies[79], sizeof bodies[79], out, &ptlen, &seq) == QS_OK);
    CHECK(qs_rl_open(&rx, bodies[15], sizeof bodies[15], out, &ptlen, &seq) == QS_E_REPLAY);  /* 15 <= 79 - 64 */
    CHECK(qs_rl_open(&rx, bodies[16], sizeof bodies[16], out, &ptlen, &seq) == QS_OK);
    qs_rl_free(&tx);
    qs_rl_free(&rx);
}

/* ---- dispatch through the POSIX port, serial on a pipe --------------------------------------------------------- */
static int out_rd;

static int read_line(char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = { out_rd, POLLIN, 0 };
        if (poll(&pf, 1, timeout_ms) <= 0) break;
        if (read(out_rd, buf + n, 1) != 1) break;
        if (buf[n] == '\n') { buf[n] = '\0'; return (int)n; }
        n++;
    }
    buf[n] = '\0';
    return -1;
}

static void send_req(const char *json)
{
    char line[1200];
    int n = snprintf(line, sizeof line, "%s*%04X", json, qs_crc16(json, strlen(json)));
    qs_node_handle_line(line, (size_t)n);
}

static int expect(const char *json_req, const char *needle)
{
    char line[1024];
    if (json_req) send_req(json_req);
    int n = read_line(line, sizeof line, 2000);
    size_t jl;
    int ok = n > 0 && qs_frame_check(line, (size_t)n, &jl) == QS_FRAME_OK && strstr(line, needle) != NULL;
    if (!ok) fprintf(stderr, "  request %s: got '%s', wanted '%s'\n", json_req ? json_req : "-", line, needle);
    return ok;
}

static void test_dispatch(void)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out)) { CHECK(0); return; }
    out_rd = out[0];
    qs_posix_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.board = "esp32"; cfg.cpu_mhz = 240; cfg.ram = 532480; cfg.rfd = in[0]; cfg.wfd = out[1]; cfg.baud = 115200;
    cfg.tx_ring = 4096;
    CHECK(qs_posix_init(&cfg) == 0);
    CHECK(expect("{\"id\":1,\"cmd\":\"hello\",\"pmin\":1,\"pmax\":1}", "\"proto\":1,\"fw\":\"0.1.0\""));
    CHECK(expect("{\"id\":2,\"cmd\":\"hello\",\"pmin\":2,\"pmax\":5}", "\"err\":\"E_PROTO\",\"msg\":\"node speaks 1..1\""));
    CHECK(expect("{\"id\":3,\"cmd\":\"hello\",\"pmin\":0,\"pmax\":9}", "{\"id\":3,\"ok\":true,\"proto\":1"));
    CHECK(expect("{\"id\":4,\"cmd\":\"ping\"}", "{\"id\":4,\"ok\":true,\"t_us\":"));
    CHECK(expect("{\"id\":5,\"cmd\":\"nope\"}", "{\"id\":5,\"ok\":false,\"err\":\"E_CMD\""));
    CHECK(expect("{\"id\":6,\"cmd\":\"hs\",\"suite\":\"x25519\"}", "{\"id\":6,\"ok\":false,\"err\":\"E_ARGS\""));
    CHECK(expect("{\"id\":7,\"cmd\":\"hs\",\"suite\":\"x25519\",\"host\":\"127.0.0.1\",\"port\":1,\"pin\":\"00\"}", "E_ARGS\",\"msg\":\"pin"));
    CHECK(expect("{\"id\":8,\"cmd\":\"log\",\"n\":0}", "E_ARGS"));
    CHECK(expect("{\"id\":0,\"cmd\":\"ping\"}", "{\"id\":0,\"ok\":false,\"err\":\"E_PARSE\""));
    CHECK(expect("{\"id\":9}", "{\"id\":9,\"ok\":false,\"err\":\"E_PARSE\""));
    CHECK(expect("{\"id\":10,\"cmd\":\"info\"}", "\"busy\":false"));
    CHECK(expect("{\"id\":11,\"cmd\":\"abort\"}", "{\"id\":11,\"ok\":true,\"busy\":false}"));
    CHECK(expect("{1,2}", "{\"id\":0,\"ok\":false,\"err\":\"E_PARSE\""));
    const char *bad = "{\"id\":12,\"cmd\":\"ping\"}*0000";
    qs_node_handle_line(bad, strlen(bad));
    CHECK(expect(NULL, "{\"id\":0,\"ok\":false,\"err\":\"E_CRC\""));
    /* log: n console lines, then the answer */
    send_req("{\"id\":13,\"cmd\":\"log\",\"n\":3}");
    char line[1024];
    int consoles = 0;
    for (int i = 0; i < 3; i++) consoles += read_line(line, sizeof line, 2000) > 0 && strncmp(line, "I (", 3) == 0;
    CHECK(consoles == 3);
    CHECK(expect(NULL, "{\"id\":13,\"ok\":true"));
    /* console lines and non-frames are ignored: nothing comes back, the next request is answered */
    qs_node_handle_line("I (5) boot: hi", 14);
    qs_node_handle_line("{\"id\":14,\"cmd\":\"ping\"}", 22);
    CHECK(expect("{\"id\":15,\"cmd\":\"ping\"}", "{\"id\":15,"));
    /* hs against a closed port: E_NET per op, the burst answers done/failed */
    CHECK(expect("{\"id\":16,\"cmd\":\"hs\",\"suite\":\"x25519\",\"host\":\"127.0.0.1\",\"port\":1,\"n\":2,"
                 "\"pin\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
                 "{\"id\":16,\"ev\":\"op\",\"i\":0,\"ok\":false,\"err\":\"E_NET\""));
    CHECK(expect(NULL, "{\"id\":16,\"ev\":\"op\",\"i\":1,"));
    CHECK(expect(NULL, "{\"id\":16,\"ok\":true,\"done\":0,\"failed\":2,"));
    close(in[1]);
}

int main(void)
{
    qs_posix_init_minimal();
    if (qs_crypto_init() < 0) { fprintf(stderr, "crypto init failed\n"); return 1; }
    test_crc_frames();
    test_lines();
    test_json_good();
    test_json_bad();
    test_json_fuzz();
    test_hkdf();
    test_aead();
    test_kex();
    test_record();
    size_t heap_before = qs_heap_current();
    test_dispatch();
    (void)heap_before;
    printf("qslab-core-test: %d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
