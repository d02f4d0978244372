// QSHS/1 QKD suites (firmware/HANDSHAKE.md §11): TS client ↔ server, the CatKDF combiner, key confirmation,
// key_ID handling and single use of QKD keys. Run: node --test dist/controller/test/handshake-qkd.test.js
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { HandshakeServer, generateServerKeys, type ServerKeys, type ServerOp } from '../handshake/server.js';
import { runClient, type ClientOptions } from '../handshake/client.js';
import {
  catKdfContext, keyIdFromBytes, keyIdToBytes, keyMap, loadBatches, QKD_INFO, QkdKeyPairSource, qkdMaster, qkdUpdFor,
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
  // self-made vector (no published vector instantiates CatKDF with a QKD key; HANDSHAKE.md §11.3)
  assert.equal(got.toString('hex'), '369482b22399781e8da3001f15e3ffbfb6888f5e039678f07661258e66c0c2e1');
  // epoch ratchet with a QKD key (§11.4): Extract(salt = Expand(s0, "QSHS1 upd", 32), IKM = qkd key), by hand
  const s0 = seq(0xa0, 32);
  const salt = createHmac('sha256', s0).update(Buffer.concat([Buffer.from('QSHS1 upd'), Buffer.of(1)])).digest();
  assert.deepEqual(nextSecret(s0, seq(0xc0, 32)), createHmac('sha256', salt).update(seq(0xc0, 32)).digest());
  assert.equal(keyIdFromBytes(keyId0), keyId);
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
