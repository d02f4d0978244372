// QSHS/1 QKD suites (firmware/HANDSHAKE.md §11): TS client ↔ server, the CatKDF combiner, key confirmation,
// key_ID handling and single use of QKD keys. Run: node --test dist/controller/test/handshake-qkd.test.js
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { ml_kem512, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { HandshakeServer, generateServerKeys, type ServerKeys, type ServerOp } from '../handshake/server.js';
import { runClient, type ClientOptions } from '../handshake/client.js';
import {
  catKdf, catKdfContext, keyIdFromBytes, keyIdToBytes, keyMap, loadBatches, QKD_INFO, QkdKeyPairSource, qkdMaster, qkdUpdFor,
} from '../handshake/qkd.js';
import { nextSecret } from '../handshake/keyschedule.js';
import { AEADS, QKD_SUITES, SUITE_IDS, decodeClientHello, encodeClientHello, type QkdSuiteName } from '../handshake/wire.js';

let KEYS: ServerKeys;
before(() => {
  KEYS = generateServerKeys();
});

const seq = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));

async function withServer<T>(pool: QkdKeyPairSource, fn: (s: HandshakeServer, addr: { host: string; port: number }, ops: ServerOp[]) => Promise<T>): Promise<T> {
  const s = new HandshakeServer({ keys: KEYS, qkd: pool.master });
  const ops: ServerOp[] = [];
  s.onOp((o) => ops.push(o));
  const addr = await s.start();
  try {
    return await fn(s, addr, ops);
  } finally {
    await s.close();
  }
}
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
const run = (s: HandshakeServer, addr: { host: string; port: number }, suite: QkdSuiteName, more: Partial<ClientOptions>) =>
  runClient({ ...addr, suite, aead: 'aes-256-gcm', pin: s.pin(suite), records: 0, bytes: 64, refresh: 0, crypto: 'node', ...more });

test('CatKDF (ETSI TS 103 744 §8.2, HKDF-SHA-256) as instantiated in §11.3: independent recomputation and a fixed vector', () => {
  const qkdKey = seq(0x00, 32);
  const z = seq(0x20, 64);                       // ML-KEM ss | X25519 ss
  const th = createHash('sha256').update('QSHS1 test transcript').digest();
  const keyId = '550e8400-e29b-41d4-a716-446655440000';
  const keyId0 = keyIdToBytes(keyId);
  const cr = seq(0x60, 32);
  const sr = seq(0x80, 32);
  // independent: context by hand, HKDF from node's crypto.hkdfSync (not our HMAC-based hkdfExtract/Expand)
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const ctx = createHash('sha256').update(Buffer.concat([
    u32(16), Buffer.from('QSHS1 qkd master'), u32(32), th, u32(16), keyId0,
  ])).digest();
  assert.deepEqual(catKdfContext(QKD_INFO, th, keyId0), ctx);
  const want = Buffer.from(hkdfSync('sha256', Buffer.concat([qkdKey, z]), Buffer.concat([cr, sr]), ctx, 32));
  const got = qkdMaster({ qkdKey, z, th, keyId0, clientRandom: cr, serverRandom: sr });
  assert.equal(got.toString('hex'), want.toString('hex'));
  // self-made vector of the QSHS/1 instantiation (no published vector uses a QKD key as psk; HANDSHAKE.md §11.3)
  assert.equal(got.toString('hex'), '369482b22399781e8da3001f15e3ffbfb6888f5e039678f07661258e66c0c2e1');
  // epoch ratchet with a QKD key (§11.4): Extract(salt = Expand(s0, "QSHS1 upd", 32), IKM = qkd key), by hand
  const s0 = seq(0xa0, 32);
  const salt = createHmac('sha256', s0).update(Buffer.concat([Buffer.from('QSHS1 upd'), Buffer.of(1)])).digest();
  assert.deepEqual(nextSecret(s0, seq(0xc0, 32)), createHmac('sha256', salt).update(seq(0xc0, 32)).digest());
  assert.equal(keyIdFromBytes(keyId0), keyId);
});


// ETSI TS 103 744 CatKDF test vectors, HKDF-SHA-256 variant, from ETSI's reference implementation
// github.com/etsi-forge/cyber.103744_QHKEX, main.c at commit 026e1ed67c7feb01b0f0262f999c6d5e6e821002
// (INFO_TEST_VECTOR "ETSI_QSHKE_TEST_VECTORS_V_1_2"; ML-KEM edition), test_hkex_concatenate_hkdf() → hkex_concat_hkdf():
// CIDs 1711 (X25519 + ML-KEM-512) and 1721 (X25519 + ML-KEM-768), strkmcat_hkdf[1] and [4]. There psk is empty,
// k1 = X25519 ss, k2 = ML-KEM ss, label = LA ^ LB, L = 16, and MA / MB come from the reference's
// message_formatting_function: cid bytes, then per field u32 BE of the field's *hex-string* length (2 × bytes) | bytes.
// PA1/PB1 and k1 are RFC 7748 §6.1 (strSA_ECC = Alice's private key); PA2 (ek), PB2 (ct) and k2 come from
// ML-KEM.KeyGen / Encaps with the file's deterministic_seed entries, which @noble/post-quantum reproduces byte for
// byte (checked against the file's strPA2 / strPB2 / strk2; the ek and ct are pinned by SHA-256 below).
const ETSI_CATKDF = [
  {
    cid: '1711', kem: ml_kem512,
    seed: 'D69CFC64F84D4F33E4C54E166B7FF9283A394986A539B23987A10F39D2D9689B6DE62E3465A55C9C78A07D265BE8540B3E58B0801A124D07FF12B438D5202EA0',
    coins: '0121CB32ACD1871135CB34E29C1A0E26CCC001B939EAFAACC28F13F1938DBF91',
    la: '0102030405060708090A0B0C0D0E0F12102030405060708090A0B0C0D0E0F122',
    lb: '202030405060708090A0B0C0D0E0F10D02030405060708090A0B0C0D0E0F10D9',
    k2: '63DFB842BF767F89717839642A9B92FCCF82BF46A9F39BA1A3292995F3F934DC',
    pa2Head: 'DEE78922BB8DA2F4764DCA45F8EA4C1F', pb2Head: '1C43DE770E9CD59846B6F81F9C61CCD8',
    km: '36C6BDE2BE72B35F3A51CA8EF72489E9',
  },
  {
    cid: '1721', kem: ml_kem768,
    seed: '8D45A2AB49D8C20D4AB5680E5C9D9D0CC9CA8228484946F9AFCE5B8DF6F39D19A9F93C7B791356B66AFCCEB745A548C7F6B185E4F45EC1FF1A22ACDD96E7A6D8',
    coins: 'B3DBB0BF61A5230DC0AB9F1D21D5C16566FF9AD805A5E1EB7B2D6913D4CD5607',
    la: '0102030405060708090A0B0C0D0E0F1101020304050607081020304050607085',
    lb: '202030405060708090A0B0C0D0E0F100202030405060708E020304050607080C',
    k2: 'E3E4F4E9D4F5C9AE03836BB9266C50B033285ACE9BC56F73817CE19679D1429A',
    pa2Head: '06F51174F03C2FE07CC31B0659B87EBF', pb2Head: 'DB3D4F38A49CC5C1C7766573873F3926',
    km: '701675524E4986A391AFEFBB604AA63D',
  },
] as const;

test('CatKDF: ETSI TS 103 744 reference vectors (HKDF-SHA-256, CIDs 1711 and 1721) byte for byte', () => {
  const hex = (s: string) => Buffer.from(s, 'hex');
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const mff = (cid: string, ...fields: Uint8Array[]) => Buffer.concat([hex(cid), ...fields.flatMap((f) => [u32(2 * f.length), Buffer.from(f)])]);
  const info = Buffer.from('ETSI_QSHKE_TEST_VECTORS_V_1_2', 'latin1');
  const skA = hex('77076D0A7318A57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92C2A');
  const pa1 = Buffer.from(x25519.getPublicKey(skA));
  const pb1 = hex('DE9EDB7D7B7DC1B4D35B61C2ECE435373F8343C85B78674DADFC7E146F882B4F');
  const k1 = Buffer.from(x25519.getSharedSecret(skA, pb1));
  assert.equal(pa1.toString('hex').toUpperCase(), '8520F0098930A754748B7DDCB43EF75A0DBF3A0D26381AF4EBA4A98EAA9B4E6A');
  assert.equal(k1.toString('hex').toUpperCase(), '4A5D9D5BA4CE2DE1728E3BF480350F25E07E21C947D19E3376F09B3C1E161742');
  const digests: string[] = [];
  const contexts: string[] = [];
  for (const v of ETSI_CATKDF) {
    const pa2 = Buffer.from(v.kem.keygen(hex(v.seed)).publicKey);
    const enc = v.kem.encapsulate(pa2, hex(v.coins));
    const pb2 = Buffer.from(enc.cipherText);
    const k2 = Buffer.from(enc.sharedSecret);
    assert.equal(k2.toString('hex').toUpperCase(), v.k2, `${v.cid}: k2`);
    assert.equal(pa2.subarray(0, 16).toString('hex').toUpperCase(), v.pa2Head, `${v.cid}: PA2`);
    assert.equal(pb2.subarray(0, 16).toString('hex').toUpperCase(), v.pb2Head, `${v.cid}: PB2`);
    digests.push(createHash('sha256').update(pa2).update(pb2).digest('hex'));
    const ma = mff(v.cid, hex(v.la), pa1, pa2);
    const mb = mff(v.cid, hex(v.lb), pb1, pb2);
    const label = Buffer.from(hex(v.la).map((b, i) => b ^ hex(v.lb)[i]!));
    const km = catKdf({ psk: Buffer.alloc(0), secrets: [k1, k2], info, ma, mb, label, length: 16 });
    assert.equal(km.toString('hex').toUpperCase(), v.km, `${v.cid}: key material`);
    // the same through Node's HKDF and a hand-made context (cahb_f of the reference)
    const ctx = createHash('sha256').update(Buffer.concat([u32(info.length), info, u32(ma.length), ma, u32(mb.length), mb])).digest();
    assert.deepEqual(catKdfContext(info, ma, mb), ctx);
    contexts.push(ctx.toString('hex'));
    assert.equal(Buffer.from(hkdfSync('sha256', Buffer.concat([k1, k2]), label, ctx, 16)).toString('hex').toUpperCase(), v.km);
  }
  // SHA-256(PA2 | PB2): the ek / ct of the file (1711: also checked against a transcription of strPA2[1] / strPB2[1])
  assert.deepEqual(digests, [
    'a5988eeca11bed01632da85c2731cfb32fa5a51ca72c8d5cf33a97aa43d87d29',
    '5206f6b0f40a8e63c4a4bb724891aa476d679064be0fe620f6a2b315b1dd38bb',
  ]);
  // CID 1721's context, also used by the firmware's unit test of this vector (firmware/tests/core_test.c)
  assert.equal(contexts[1], '43684d7807e0b60507d4a921c900d6498f5cb110c579179ce7268abcc508afc7');
});

test('wire: qkd_upd in the ClientHello of a QKD suite only; loadBatches fits 9 keys per request line', () => {
  const base = { version: 1, aead: 1, refresh: 2, clientRandom: seq(0, 32), share: seq(0, 1184) };
  const ch = encodeClientHello({ ...base, suite: SUITE_IDS['qkd-mlkem768'], qkdUpd: 3 });
  assert.equal(ch.length, 45 + 1184 + 1);
  assert.equal(decodeClientHello(ch.subarray(4)).qkdUpd, 3);
  assert.equal(qkdUpdFor(7, 2), 3);
  assert.equal(qkdUpdFor(0, 2), 0);
  assert.equal(qkdUpdFor(7, 0), 0);
  const pool = new QkdKeyPairSource();
  const b = loadBatches(pool.generate(20));
  assert.deepEqual(b.map((x) => x.split(';').length), [9, 9, 2]);
  for (const x of b) assert.ok(JSON.stringify({ id: 4294967295, cmd: 'qkd', op: 'load', keys: x }).length + 6 <= 1024);
});

for (const suite of QKD_SUITES) {
  for (const aead of AEADS) {
    test(`${suite} + ${aead}: handshake, records with QKD key refresh (K = 2, M = 9 → 5 keys)`, async () => {
      const pool = new QkdKeyPairSource();
      const store = keyMap(pool.generate(12));
      await withServer(pool, async (s, addr, ops) => {
        for (let i = 0; i < 2; i++) {
          const r = await run(s, addr, suite, { aead, records: 9, refresh: 2, qkdKeys: store, crypto: i ? 'node' : 'noble' });
          assert.equal(r.ok, true, `${r.err} ${r.msg}`);
          assert.equal(r.recs, 9);
          assert.equal(r.qkdKeyIds!.length, 5);
          assert.ok(r.t.qkd! > 0);
        }
        await settle();
        assert.deepEqual(ops.flatMap((o) => o.qkdKeyIds), pool.issued);
        assert.equal(new Set(pool.issued).size, 10);
        assert.equal(store.size, 2, 'client store: used keys removed');
        assert.ok(ops.every((o) => o.ok && o.recs === 9));
      });
    });
  }
}

test('key confirmation: a flipped bit in the client\'s QKD key (handshake key or an epoch key) fails with a clear reason', async () => {
  const pool = new QkdKeyPairSource();
  const ks = pool.generate(10);
  await withServer(pool, async (s, addr, ops) => {
    // handshake key differs → server rejects the client Finished
    const store = keyMap(ks);
    store.get(ks[0]!.keyId)![31]! ^= 0x01;
    const r = await run(s, addr, 'qkd-mlkem768', { qkdKeys: store });
    assert.equal(r.ok, false);
    assert.equal(r.err, 'E_QKD_CONFIRM');
    assert.match(r.msg!, new RegExp(`^key confirmation failed \\(QKD key ${ks[0]!.keyId}\\)`));
    await settle();
    assert.equal(ops[0]!.err, 'handshake_failure');
    assert.match(ops[0]!.msg!, /key confirmation failed \(QKD key [0-9a-f-]{36}\): client Finished does not verify/);
    assert.deepEqual(ops[0]!.qkdKeyIds, [ks[0]!.keyId]);
    // an epoch key differs → the first record of that epoch fails authentication
    store.get(ks[2]!.keyId)![0]! ^= 0x80;
    const r2 = await run(s, addr, 'qkd-x25519mlkem768', { qkdKeys: store, records: 4, refresh: 2 });
    assert.equal(r2.ok, false);
    assert.equal(r2.err, 'E_ALERT');
    await settle();
    assert.equal(ops[1]!.err, 'bad_record_mac');
  });
});

test('unknown key_ID → E_QKD_KEY; no key source → unsupported; too many epochs → E_ARGS', async () => {
  const pool = new QkdKeyPairSource();
  pool.generate(3);
  await withServer(pool, async (s, addr, ops) => {
    const r = await run(s, addr, 'qkd-mlkem768', { qkdKeys: new Map() });
    assert.equal(r.err, 'E_QKD_KEY');
    assert.match(r.msg!, /unknown QKD key_ID [0-9a-f-]{36} \(epoch 0\)/);
    await settle();
    assert.equal(ops[0]!.err, 'peer_alert:handshake_failure');
    const big = await run(s, addr, 'qkd-mlkem768', { qkdKeys: new Map(), records: 1000, refresh: 1 });
    assert.equal(big.err, 'E_ARGS');
    const none = await run(s, addr, 'qkd-mlkem768', { qkdKeys: undefined });
    assert.equal(none.err, 'E_ARGS');
  });
  const plain = new HandshakeServer({ keys: KEYS });
  const addr = await plain.start();
  try {
    const r = await runClient({ ...addr, suite: 'qkd-x25519mlkem768', aead: 'aes-256-gcm', pin: plain.pin('qkd-x25519mlkem768'), qkdKeys: new Map() });
    assert.equal(r.err, 'E_ALERT');
    assert.match(r.msg!, /unsupported/);
  } finally {
    await plain.close();
  }
});

test('200 handshakes: every key_ID used exactly once (server and client agree)', async () => {
  const pool = new QkdKeyPairSource();
  const store = keyMap(pool.generate(420));
  await withServer(pool, async (s, addr, ops) => {
    const seen: string[] = [];
    for (let i = 0; i < 200; i++) {
      const suite = QKD_SUITES[i % 2]!;
      const r = await run(s, addr, suite, { qkdKeys: store, records: i % 3 === 0 ? 3 : 0, refresh: 1, aead: AEADS[i % 2]! });
      assert.equal(r.ok, true, `${i}: ${r.err} ${r.msg}`);
      seen.push(...r.qkdKeyIds!);
    }
    await settle();
    assert.equal(ops.length, 200);
    const serverIds = ops.flatMap((o) => o.qkdKeyIds);
    assert.equal(new Set(serverIds).size, serverIds.length, 'a key_ID was used twice');
    assert.deepEqual([...serverIds].sort(), [...seen].sort());
    assert.deepEqual(serverIds.sort(), [...pool.issued].sort());
    assert.equal(store.size, 420 - serverIds.length);
  });
});
