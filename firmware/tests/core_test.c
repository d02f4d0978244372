/* Host unit tests of the portable core (+ the OpenSSL crypto port and the POSIX port underneath). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/crypto_port.h"
#include "../core/hkdf.h"
#include "../core/node.h"
#include "../core/port.h"
#include "../core/proto.h"
#include "../core/qs.h"
#include "../core/qshs.h"
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

/* ---- plaintext records (suite none, HANDSHAKE.md §12) ------------------------------------------------------------ */
static void test_record_plaintext(void)
{
    uint8_t pt[40], body[12][40 + QS_RL_HDR], out[40], t[40 + QS_RL_HDR], zero[32] = { 0 };
    size_t ptlen;
    uint64_t seq;
    qs_rl tx, rx;
    CHECK(qs_rl_overhead(QS_RL_PLAINTEXT) == QS_RL_HDR && qs_rl_overhead(QS_AEAD_AES256GCM) == QS_RL_OVERHEAD &&
          qs_rl_overhead(QS_AEAD_CHACHA20POLY1305) == QS_RL_OVERHEAD);
    CHECK(qs_rl_init(&tx, QS_RL_PLAINTEXT, 3, NULL) == QS_OK && qs_rl_init(&rx, QS_RL_PLAINTEXT, 3, NULL) == QS_OK);
    CHECK(tx.ctx == NULL && rx.ctx == NULL);
    for (int i = 0; i < 10; i++) {
        memset(pt, 0xA0 + i, sizeof pt);
        CHECK(qs_rl_seal(&tx, pt, sizeof pt, body[i]) == QS_OK);
        /* same header as the AEAD records (epoch = floor(seq / K), seq), then the plaintext itself, no tag */
        CHECK(body[i][0] == 0 && body[i][1] == i / 3 && body[i][9] == i && memcmp(body[i] + QS_RL_HDR, pt, sizeof pt) == 0);
    }
    /* key refresh is a no-op: the epoch counter moved, no secret was ever set */
    CHECK(tx.epoch == 3 && tx.next_seq == 10 && memcmp(tx.secret, zero, 32) == 0 && tx.ctx == NULL);
    CHECK(qs_rl_open(&rx, body[0], sizeof body[0], out, &ptlen, &seq) == QS_OK && ptlen == 40 && out[0] == 0xA0 && seq == 0);
    CHECK(qs_rl_open(&rx, body[0], sizeof body[0], out, &ptlen, &seq) == QS_E_REPLAY);
    /* no MAC: a changed payload is accepted as it is (the caller's echo comparison catches it), and its seq is used */
    memcpy(t, body[1], sizeof t);
    t[QS_RL_HDR + 5] ^= 1;
    CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_OK && out[5] == (0xA1 ^ 1) && seq == 1);
    CHECK(qs_rl_open(&rx, body[1], sizeof body[1], out, &ptlen, &seq) == QS_E_REPLAY);
    /* wrong epoch field, skip ahead two epochs, retired epoch, replay: as for AEAD records */
    memcpy(t, body[2], sizeof t);
    t[1] = 1;
    CHECK(qs_rl_open(&rx, t, sizeof t, out, &ptlen, &seq) == QS_E_EPOCH);
    CHECK(qs_rl_open(&rx, body[7], sizeof body[7], out, &ptlen, &seq) == QS_OK && out[0] == 0xA7 && rx.epoch == 2);
    CHECK(qs_rl_open(&rx, body[5], sizeof body[5], out, &ptlen, &seq) == QS_E_EPOCH);
    CHECK(qs_rl_open(&rx, body[6], sizeof body[6], out, &ptlen, &seq) == QS_OK && out[0] == 0xA6);
    CHECK(qs_rl_open(&rx, body[7], sizeof body[7], out, &ptlen, &seq) == QS_E_REPLAY);
    CHECK(qs_rl_open(&rx, body[9], sizeof body[9], out, &ptlen, &seq) == QS_OK && rx.epoch == 3);
    CHECK(qs_rl_open(&rx, body[8], QS_RL_HDR - 1, out, &ptlen, &seq) == QS_E_DECODE);
    CHECK(qs_rl_open(&rx, body[8], sizeof body[8], out, &ptlen, &seq) == QS_E_EPOCH);   /* epoch 2 retired */
    CHECK(qs_rl_seal(&tx, pt, 0, body[10]) == QS_OK);   /* an empty record: header only */
    CHECK(qs_rl_open(&rx, body[10], QS_RL_HDR, out, &ptlen, &seq) == QS_OK && ptlen == 0 && seq == 10);
    CHECK(memcmp(rx.secret, zero, 32) == 0 && rx.ctx == NULL);
    /* sealing in place (plaintext at the start of the body buffer) */
    uint8_t b[40 + QS_RL_HDR];
    for (int j = 0; j < 40; j++) b[j] = (uint8_t)(j * 7);
    CHECK(qs_rl_seal(&tx, b, 40, b) == QS_OK && b[9] == 11 && b[QS_RL_HDR] == 0 && b[QS_RL_HDR + 39] == (uint8_t)(39 * 7));
    qs_rl_free(&tx);
    qs_rl_free(&rx);
}

/* ---- suite none end to end: qs_hs_op against an in-process fake server (HANDSHAKE.md §12) ------------------------- */
enum { FS_ECHO, FS_TAMPER, FS_REFUSE, FS_NOFLAG, FS_CERT };
typedef struct {
    int lfd;
    int mode;
    uint32_t bytes, refresh;
    uint8_t ch[64];       /* the ClientHello frame as received */
    size_t chlen;
    int recs_clear;       /* records whose header was (floor(seq/K), seq) and whose payload was the node's pattern */
    int recs;
    int got_close;        /* close_notify received */
    int alert;            /* other alert received from the node (-1: none) */
} fake_srv;

static int rd_all(int fd, uint8_t *b, size_t n)
{
    for (size_t o = 0; o < n;) {
        ssize_t k = read(fd, b + o, n - o);
        if (k <= 0) return -1;
        o += (size_t)k;
    }
    return 0;
}

static int wr_all(int fd, const uint8_t *b, size_t n)
{
    for (size_t o = 0; o < n;) {
        ssize_t k = write(fd, b + o, n - o);
        if (k <= 0) return -1;
        o += (size_t)k;
    }
    return 0;
}

static void *fake_server(void *arg)
{
    fake_srv *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    uint8_t h[4], buf[4 + 16384 + 64];
    if (rd_all(fd, h, 4) == 0) {
        size_t l = ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (l + 4 <= sizeof f->ch && rd_all(fd, f->ch + 4, l) == 0) {
            memcpy(f->ch, h, 4);
            f->chlen = 4 + l;
        }
    }
    if (f->mode == FS_REFUSE) {
        static const char why[] = "plaintext suite none is not allowed on this server";
        buf[0] = 6; buf[1] = 0; buf[2] = 0; buf[3] = (uint8_t)(1 + strlen(why)); buf[4] = 6;
        memcpy(buf + 5, why, strlen(why));
        (void)wr_all(fd, buf, 5 + strlen(why));
        close(fd);
        return NULL;
    }
    /* ServerHello: server_random | share_len 0 | cert_len 0 | sig_len 0 | flags = plaintext */
    uint8_t sh[4 + 32 + 6 + 1 + 1];
    size_t shl = 4 + 32 + 6 + 1;
    memset(sh, 0x5A, sizeof sh);
    memset(sh + 36, 0, 6);
    sh[42] = 0x02;
    if (f->mode == FS_NOFLAG) sh[42] = 0x00;
    if (f->mode == FS_CERT) { sh[39] = 1; sh[40] = 0xCC; sh[41] = 0; sh[42] = 0; sh[43] = 0x02; shl++; }
    sh[0] = 2; sh[1] = 0; sh[2] = 0; sh[3] = (uint8_t)(shl - 4);
    (void)wr_all(fd, sh, shl);
    for (;;) {
        if (rd_all(fd, h, 4)) break;
        size_t l = ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (l > sizeof buf - 4 || rd_all(fd, buf + 4, l)) break;
        if (h[0] == 6) {
            if (l >= 1 && buf[4] == 0) f->got_close = 1;
            else if (l >= 1) f->alert = buf[4];
            break;
        }
        if (h[0] != 5 || l < 10) break;
        uint64_t seq = 0;
        for (int k = 0; k < 8; k++) seq = (seq << 8) | buf[6 + k];
        unsigned epoch = ((unsigned)buf[4] << 8) | buf[5];
        int clear = l == 10 + f->bytes && seq == (uint64_t)f->recs && epoch == (f->refresh ? seq / f->refresh : 0);
        for (size_t j = 0; clear && j < f->bytes; j++) clear = buf[14 + j] == (uint8_t)(seq * 131u + j);
        f->recs_clear += clear;
        memcpy(buf, h, 4);
        if (f->mode == FS_TAMPER && f->recs == 1) buf[14] ^= 0x01;   /* the second echo's first payload byte */
        f->recs++;
        if (wr_all(fd, buf, 4 + l)) break;
    }
    close(fd);
    return NULL;
}

static void run_none(int mode, uint32_t records, uint32_t bytes, uint32_t refresh, qs_op_result *r, fake_srv *f)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->bytes = bytes;
    f->refresh = refresh;
    f->alert = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    pthread_t th;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) || listen(f->lfd, 1) ||
        getsockname(f->lfd, (struct sockaddr *)&a, &al) || pthread_create(&th, NULL, fake_server, f)) {
        CHECK(0);
        if (f->lfd >= 0) close(f->lfd);
        return;
    }
    qs_hs_params p;
    memset(&p, 0, sizeof p);
    p.suite = qs_suite_by_name("none");
    p.aead = QS_AEAD_CHACHA20POLY1305;   /* ignored by none: the ClientHello says aead 0 */
    p.records = records;
    p.bytes = bytes;
    p.refresh = refresh;
    strcpy(p.host, "127.0.0.1");
    p.port = ntohs(a.sin_port);
    p.timeout_ms = 3000;
    qs_hs_op(&p, r);
    pthread_join(th, NULL);
    close(f->lfd);
}

static void test_hs_none(void)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK(qs_suite_by_name("none") == QS_SUITE_NONE && strcmp(qs_suite_name(QS_SUITE_NONE), "none") == 0);
    CHECK(qs_suite_plaintext(QS_SUITE_NONE) && !qs_suite_plaintext(QS_SUITE_X25519) && !qs_suite_plaintext(QS_SUITE_QKD_MLKEM768));
    CHECK(!qs_suite_mutual_ok(QS_SUITE_NONE) && !qs_suite_qkd(QS_SUITE_NONE));
    const uint32_t only_plain_steps = (1u << QS_T_CONNECT) | (1u << QS_T_HS) | (1u << QS_T_REC) | (1u << QS_T_TOTAL);
    qs_op_result r;
    fake_srv f;

    /* M = 5 records of B = 100 bytes, K = 2: all echoed, in the clear, with the AEAD records' header */
    run_none(FS_ECHO, 5, 100, 2, &r, &f);
    CHECK(r.status == QS_OK && r.recs == 5 && f.recs == 5 && f.recs_clear == 5 && f.got_close && f.alert == -1);
    /* ClientHello: version 1 | suite 10 | aead 0 | refresh 2 | cr(32) | share_len 0 | flags = plaintext (0x02) */
    CHECK(f.chlen == 46 && f.ch[0] == 1 && f.ch[3] == 42 && f.ch[4] == 1 && f.ch[5] == 10 && f.ch[6] == 0 &&
          f.ch[7] == 0 && f.ch[10] == 2 && f.ch[43] == 0 && f.ch[44] == 0 && f.ch[45] == 0x02);
    CHECK(r.have_cr && memcmp(r.cr, f.ch + 11, 8) == 0);
    /* bytes: CH 46, SH 43, each record 4 + 10 + B both ways; no Finished, no key exchange */
    CHECK(r.hs_tx == 46 && r.hs_rx == 43 && r.rec_tx == 5 * 114 && r.rec_rx == 5 * 114);
    /* steps: connect, hs, rec, total only (no keygen / dh / verify / kdf / fin) */
    CHECK(r.t_set == only_plain_steps);
    CHECK(r.t_ns[QS_T_TOTAL] == r.t_ns[QS_T_HS] + r.t_ns[QS_T_REC] && r.t_ns[QS_T_HS] >= r.t_ns[QS_T_CONNECT]);

    /* no records: the hello exchange alone */
    run_none(FS_ECHO, 0, 16, 0, &r, &f);
    CHECK(r.status == QS_OK && r.recs == 0 && f.recs == 0 && f.got_close && r.rec_tx == 0 && r.t_set == only_plain_steps);

    /* an echo changed on the way: E_RECORD like a bad MAC, alert bad_record_mac */
    run_none(FS_TAMPER, 4, 32, 0, &r, &f);
    CHECK(r.status == QS_E_BADMAC && strcmp(qs_status_code(r.status), "E_RECORD") == 0 && r.recs == 1);
    CHECK(strstr(r.msg, "echo of record 1") != NULL && strstr(r.msg, "plaintext") != NULL);
    CHECK(f.alert == 1 && !f.got_close);

    /* the server refuses plaintext: E_ALERT with its reason, nothing sent back */
    run_none(FS_REFUSE, 2, 32, 0, &r, &f);
    CHECK(r.status == QS_E_ALERT && strstr(r.msg, "unsupported") != NULL && strstr(r.msg, "plaintext suite none") != NULL);
    CHECK(r.hs_rx > 0 && r.rec_tx == 0 && !(r.t_set & (1u << QS_T_REC)));

    /* a ServerHello that does not confirm plaintext, or carries a key: decode_error (E_NET) before any record */
    run_none(FS_NOFLAG, 2, 32, 0, &r, &f);
    CHECK(r.status == QS_E_DECODE && strstr(r.msg, "confirm plaintext") != NULL && f.alert == 3 && f.recs == 0);
    run_none(FS_CERT, 2, 32, 0, &r, &f);
    CHECK(r.status == QS_E_DECODE && strstr(r.msg, "key or signature") != NULL && f.alert == 3 && f.recs == 0);
    CHECK(strcmp(qs_status_code(QS_E_DECODE), "E_NET") == 0);
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

/* Sends one request and reads every line the node writes up to its answer (id), then 100 ms more. Returns the answer
 * line in ans; fails the check when any line (answer, event, console) contains `secret`. */
static int net_req(const char *json, uint32_t id, const char *secret, char *ans, size_t cap)
{
    char line[1024], want[32];
    snprintf(want, sizeof want, "{\"id\":%u,\"ok\":", (unsigned)id);
    send_req(json);
    int leaked = 0, got = 0;
    ans[0] = '\0';
    for (;;) {
        int n = read_line(line, sizeof line, got ? 100 : 2000);
        if (n < 0) break;
        if (secret && secret[0] && strstr(line, secret)) leaked = 1;
        if (!got && strncmp(line, want, strlen(want)) == 0) {
            snprintf(ans, cap, "%s", line);
            got = 1;
        }
    }
    if (leaked) fprintf(stderr, "  request %s: the password appeared in the node's output\n", json);
    if (!got) fprintf(stderr, "  request %s: no answer\n", json);
    return got && !leaked;
}

static void test_net(void)
{
    char a[1024];
    /* status query: the POSIX port runs on the host's network */
    CHECK(net_req("{\"id\":40,\"cmd\":\"net\"}", 40, NULL, a, sizeof a) && strstr(a, "\"status\":\"host network\"") != NULL);
    /* valid credentials: validated, then E_NOTSUP from the POSIX port with the fix; the password never comes back */
    const char *pw = "s3cret-Wifi-Passw0rd!";
    CHECK(net_req("{\"id\":41,\"cmd\":\"net\",\"ssid\":\"lab-ap\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 41, pw, a, sizeof a) &&
          strstr(a, "\"ok\":false,\"err\":\"E_NOTSUP\"") != NULL && strstr(a, "host's network") != NULL &&
          strstr(a, "raspi-config") != NULL);
    CHECK(net_req("{\"id\":42,\"cmd\":\"net\",\"ssid\":\"open-ap\",\"pass\":\"\"}", 42, NULL, a, sizeof a) && strstr(a, "E_NOTSUP") != NULL);
    const char *psk = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    CHECK(net_req("{\"id\":43,\"cmd\":\"net\",\"ssid\":\"x\",\"pass\":\"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\"}",
                  43, psk, a, sizeof a) && strstr(a, "E_NOTSUP") != NULL);
    CHECK(net_req("{\"id\":44,\"cmd\":\"net\",\"ssid\":\"12345678901234567890123456789012\",\"pass\":\"~ !\\\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\\\]^_`az{|}\"}",
                  44, "0123456789:;<=>?", a, sizeof a) && strstr(a, "E_NOTSUP") != NULL);   /* 32-byte SSID, printable ASCII */
    /* invalid SSIDs */
    CHECK(net_req("{\"id\":45,\"cmd\":\"net\",\"ssid\":\"\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 45, pw, a, sizeof a) &&
          strstr(a, "\"err\":\"E_ARGS\",\"msg\":\"ssid: string of 1-32 bytes") != NULL);
    CHECK(net_req("{\"id\":46,\"cmd\":\"net\",\"ssid\":\"123456789012345678901234567890123\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 46, pw, a, sizeof a) &&
          strstr(a, "E_ARGS\",\"msg\":\"ssid:") != NULL);
    CHECK(net_req("{\"id\":47,\"cmd\":\"net\",\"ssid\":7,\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 47, pw, a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"ssid:") != NULL);
    CHECK(net_req("{\"id\":48,\"cmd\":\"net\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 48, pw, a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"ssid: required") != NULL);
    CHECK(net_req("{\"id\":49,\"cmd\":\"net\",\"ssid\":\"a\\u0000b\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}", 49, pw, a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"ssid:") != NULL);
    /* invalid passwords: the message names the rule, never the value */
    CHECK(net_req("{\"id\":50,\"cmd\":\"net\",\"ssid\":\"lab\"}", 50, NULL, a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: required") != NULL);
    CHECK(net_req("{\"id\":51,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"short7!\"}", 51, "short7!", a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: empty") != NULL);
    CHECK(net_req("{\"id\":52,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"1234567890123456789012345678901234567890123456789012345678901234x\"}", 52,
                  "1234567890123456789012345678901234567890123456789012345678901234x", a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: empty") != NULL);
    CHECK(net_req("{\"id\":53,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"}", 53,
                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: 64 characters must be hex") != NULL);
    CHECK(net_req("{\"id\":54,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"tab\\there-passw0rd\"}", 54, "here-passw0rd", a, sizeof a) &&
          strstr(a, "E_ARGS\",\"msg\":\"pass: only printable ASCII") != NULL);
    CHECK(net_req("{\"id\":55,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"caf\\u00e9-passw0rd\"}", 55, "-passw0rd", a, sizeof a) &&
          strstr(a, "E_ARGS\",\"msg\":\"pass: only printable ASCII") != NULL);
    CHECK(net_req("{\"id\":56,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":12345678}", 56, "12345678", a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: string") != NULL);
    CHECK(net_req("{\"id\":57,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"nul\\u0000-passw0rd\"}", 57, "-passw0rd", a, sizeof a) && strstr(a, "E_ARGS\",\"msg\":\"pass: string") != NULL);
    /* a bad CRC on a request with a password: E_CRC, nothing echoed */
    const char *badcrc = "{\"id\":58,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"s3cret-Wifi-Passw0rd!\"}*0000";
    qs_node_handle_line(badcrc, strlen(badcrc));
    char line[1024];
    CHECK(read_line(line, sizeof line, 2000) > 0 && strstr(line, "E_CRC") != NULL && strstr(line, pw) == NULL);
    /* malformed JSON after the password: E_PARSE, nothing echoed */
    send_req("{\"id\":60,\"cmd\":\"net\",\"ssid\":\"lab\",\"pass\":\"s3cret-Wifi-Passw0rd!\",}");
    CHECK(read_line(line, sizeof line, 2000) > 0 && strstr(line, "E_PARSE") != NULL && strstr(line, pw) == NULL);
    /* the node still answers afterwards */
    CHECK(expect("{\"id\":59,\"cmd\":\"ping\"}", "{\"id\":59,\"ok\":true"));
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
    CHECK(expect("{\"id\":3,\"cmd\":\"hello\",\"pmin\":1,\"pmax\":1}", "\"qkd-x25519mlkem768\",\"none\"]"));   /* lists none */
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
    /* none: no pin needed (a given one must still be 64 hex digits); no mutual mode */
    CHECK(expect("{\"id\":17,\"cmd\":\"hs\",\"suite\":\"none\",\"host\":\"127.0.0.1\",\"port\":1,\"pin\":\"00\"}", "E_ARGS\",\"msg\":\"pin"));
    CHECK(expect("{\"id\":18,\"cmd\":\"hs\",\"suite\":\"none\",\"host\":\"127.0.0.1\",\"port\":1,\"mutual\":true}", "E_ARGS\",\"msg\":\"mutual"));
    CHECK(expect("{\"id\":19,\"cmd\":\"hs\",\"suite\":\"none\",\"host\":\"127.0.0.1\",\"port\":1,\"n\":1}",
                 "{\"id\":19,\"ev\":\"op\",\"i\":0,\"ok\":false,\"err\":\"E_NET\""));
    CHECK(expect(NULL, "{\"id\":19,\"ok\":true,\"done\":0,\"failed\":1,"));
    test_net();
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
    test_record_plaintext();
    test_hs_none();
    size_t heap_before = qs_heap_current();
    test_dispatch();
    (void)heap_before;
    printf("qslab-core-test: %d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
