// QSHS/1 handshake server, client, key schedule, record layer (firmware/HANDSHAKE.md).
// Run: node --test dist/controller/test/handshake.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expand as nobleExpand, extract as nobleExtract } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { p256 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';

import {
  HandshakeServer, generateServerKeys, loadServerKeys, saveServerKeys, loadOrCreateServerKeys,
  type Fault, type ServerKeys, type ServerOp,
} from '../handshake/server.js';
import { runClient, type ClientOptions } from '../handshake/client.js';
import { hkdfExpand, hkdfExtract, setSecretTap } from '../handshake/keyschedule.js';
import { RecordError, RecordReceiver, RecordSender, ReplayWindow } from '../handshake/record.js';
import { Ops, withTrackedServer, client, startProxy } from './harness.js';
import {
  ALERT, AEADS, decodeAlert, decodeClientHello, decodeServerHello, encodeClientHello, encodeFinished, encodeFrame,
  FrameReader, MAX_BODY, MSG, SUITE_IDS, AEAD_IDS, CLASSICAL_SUITES as SUITES, WireError,
  type AeadName, type Frame, type SuiteName,
} from '../handshake/wire.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const te = (s: string): Uint8Array => Buffer.from(s, 'latin1');

let KEYS: ServerKeys;
before(() => {
  KEYS = generateServerKeys();
});


const withServer = <T>(
  opts: { fault?: Fault; recordTimeoutMs?: number } | undefined,
  fn: (s: HandshakeServer, addr: { host: string; port: number }, ops: Ops) => Promise<T>,
): Promise<T> => withTrackedServer({ keys: KEYS, ...(opts ?? {}) }, fn);

/** Raw TCP client: write `data` (optionally end), return everything the server sent until it closed. */
function rawExchange(port: number, data: Buffer[], end = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', () => undefined); // a reset after the server's alert is fine
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('connect', () => {
      for (const d of data) s.write(d);
      if (end) s.end();
    });
    setTimeout(() => reject(new Error('rawExchange: server did not close within 5 s')), 5000).unref();
  });
}

function parseFrames(b: Buffer): Frame[] {
  const r = new FrameReader();
  r.push(b);
  const out: Frame[] = [];
  for (let f = r.next(); f; f = r.next()) out.push(f);
  assert.equal(r.buffered, 0, 'trailing partial frame');
  return out;
}

function expectAlert(b: Buffer, code: number): void {
  const frames = parseFrames(b);
  assert.equal(frames.length, 1, `expected exactly one frame, got ${frames.length}`);
  assert.equal(frames[0]!.type, MSG.Alert);
  assert.equal(decodeAlert(frames[0]!.body).code, code);
}

// Independent (noble) implementation of §5/§6 for cross-checks.
const nExpand = (prk: Uint8Array, info: Uint8Array, n: number): Uint8Array => nobleExpand(nobleSha256, prk, info, n);
const cat = (...a: Uint8Array[]): Uint8Array => Buffer.concat(a);
function nobleEpoch(secret0: Uint8Array, epoch: number): { key: Uint8Array; iv: Uint8Array } {
  let s = secret0;
  for (let e = 0; e < epoch; e++) s = nExpand(s, te('QSHS1 upd'), 32);
  return { key: nExpand(s, te('QSHS1 key'), 32), iv: nExpand(s, te('QSHS1 iv'), 12) };
}
function nobleAead(aead: AeadName, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) {
  return aead === 'aes-256-gcm' ? gcm(key, nonce, aad) : chacha20poly1305(key, nonce, aad);
}
function nobleNonce(iv: Uint8Array, seq: bigint): Uint8Array {
  const n = Buffer.from(iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(seq);
  for (let i = 0; i < 8; i++) n[4 + i]! ^= s[i]!;
  return n;
}
/** A record body built independently of record.ts: any epoch field, any seq, keys of `keyEpoch`. */
function forge(aead: AeadName, secret0: Uint8Array, epochField: number, seq: bigint, pt: Uint8Array, keyEpoch = epochField): Buffer {
  const { key, iv } = nobleEpoch(secret0, keyEpoch);
  const hdr = Buffer.alloc(10);
  hdr.writeUInt16BE(epochField, 0);
  hdr.writeBigUInt64BE(seq, 2);
  return Buffer.concat([hdr, nobleAead(aead, key, nobleNonce(iv, seq), hdr).encrypt(pt)]);
}
function nobleOpen(aead: AeadName, secret0: Uint8Array, body: Buffer): Uint8Array {
  const epoch = body.readUInt16BE(0);
  const seq = body.readBigUInt64BE(2);
  const { key, iv } = nobleEpoch(secret0, epoch);
  return nobleAead(aead, key, nobleNonce(iv, seq), body.subarray(0, 10)).decrypt(body.subarray(10));
}

function recErr(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof RecordError && e.code === code, `expected RecordError ${code}`);
}


// ---------------------------------------------------------------------------------------------------------

describe('key schedule', () => {
  test('RFC 5869 test case 1 (HKDF-SHA-256)', () => {
    const ikm = Buffer.alloc(22, 0x0b);
    const salt = Buffer.from('000102030405060708090a0b0c', 'hex');
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    const prk = hkdfExtract(salt, ikm);
    assert.equal(hex(prk), '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
    const okm = hkdfExpand(prk, info, 42);
    assert.equal(hex(okm),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  test('HKDF-Expand agrees with @noble/hashes for the lengths QSHS uses and multi-block output', () => {
    for (const n of [12, 32, 33, 64, 100]) {
      const prk = randomBytes(32);
      const info = randomBytes(45);
      assert.equal(hex(hkdfExpand(prk, info, n)), hex(nExpand(prk, info, n)));
      assert.equal(hex(hkdfExpand(prk, [info.subarray(0, 10), info.subarray(10)], n)), hex(nExpand(prk, info, n)));
    }
    const salt = randomBytes(64);
    const z = randomBytes(32);
    assert.equal(hex(hkdfExtract(salt, z)), hex(nobleExtract(nobleSha256, z, salt)));
  });
});

describe('wire', () => {
  test('frames parse incrementally, byte by byte, and across chunk boundaries', () => {
    const ch = encodeClientHello({
      version: 1, suite: 3, aead: 2, refresh: 0xfffffffe, clientRandom: randomBytes(32), share: randomBytes(32),
    });
    const fin = encodeFinished(randomBytes(32));
    const all = Buffer.concat([ch, fin, encodeFrame(MSG.Alert, Buffer.of(0))]);
    const r = new FrameReader();
    const got: Frame[] = [];
    for (const byte of all) {
      r.push(Buffer.of(byte));
      for (let f = r.next(); f; f = r.next()) got.push(f);
    }
    assert.deepEqual(got.map((f) => f.type), [MSG.ClientHello, MSG.Finished, MSG.Alert]);
    assert.equal(hex(got[0]!.raw), hex(ch));
    const d = decodeClientHello(got[0]!.body);
    assert.equal(d.refresh, 0xfffffffe);
    assert.equal(d.suite, 3);
    assert.equal(d.share.length, 32);
    assert.equal(ch.length, 4 + 7 + 32 + 2 + 32);
  });

  test('bad headers and bodies are decode_error', () => {
    const bad = (b: Buffer): void => {
      const r = new FrameReader();
      r.push(b);
      assert.throws(() => r.next(), (e: unknown) => e instanceof WireError && e.alert === 'decode_error');
    };
    bad(Buffer.from('47455420', 'hex'));                   // "GET " → type 0x47
    bad(Buffer.from('00000000', 'hex'));                   // type 0
    bad(Buffer.from([0x05, 0x10, 0x00, 0x01]));           // 1 MiB + 1
    const r = new FrameReader();                            // exactly 1 MiB is fine (header-wise)
    r.push(Buffer.from([0x05, 0x10, 0x00, 0x00]));
    assert.equal(r.next(), undefined);
    assert.equal(MAX_BODY, 1 << 20);
    assert.throws(() => decodeClientHello(Buffer.alloc(5)), WireError);
    const okBody = encodeClientHello({ version: 1, suite: 1, aead: 1, refresh: 0, clientRandom: randomBytes(32), share: Buffer.alloc(0) }).subarray(4);
    assert.throws(() => decodeClientHello(Buffer.concat([okBody, Buffer.of(0)])), /trailing/);
    assert.throws(() => decodeServerHello(Buffer.alloc(33)), WireError);
    assert.throws(() => decodeAlert(Buffer.alloc(0)), WireError);
    assert.throws(() => decodeAlert(Buffer.from([1, 0xff, 0xfe])), /UTF-8/);
  });
});

describe('record layer', () => {
  for (const aead of AEADS) {
    test(`${aead}: seal/open across epochs (K=3) and independent decryption with noble`, () => {
      const s0 = randomBytes(32);
      const tx = new RecordSender(aead, Buffer.from(s0), 3);
      const rx = new RecordReceiver(aead, Buffer.from(s0), 3);
      for (let i = 0; i < 10; i++) {
        const pt = randomBytes(1 + i * 7);
        const body = tx.seal(pt);
        assert.equal(body.readUInt16BE(0), Math.floor(i / 3));
        assert.equal(body.readBigUInt64BE(2), BigInt(i));
        assert.equal(body.length, 10 + pt.length + 16);
        assert.equal(hex(nobleOpen(aead, s0, body)), hex(pt));
        const o = rx.open(body);
        assert.equal(hex(o.plaintext), hex(pt));
        assert.equal(o.epoch, Math.floor(i / 3));
      }
      // and the other way round: noble-built records open
      const rx2 = new RecordReceiver(aead, Buffer.from(s0), 2);
      for (let i = 0; i < 5; i++) {
        const pt = randomBytes(20);
        assert.equal(hex(rx2.open(forge(aead, s0, Math.floor(i / 2), BigInt(i), pt)).plaintext), hex(pt));
      }
    });
  }

  test('K=1 and K=0 epochs; ratcheting wipes the previous epoch secret', () => {
    const s0 = randomBytes(32);
    const txSecret = Buffer.from(s0);
    const rxSecret = Buffer.from(s0);
    const tx = new RecordSender('aes-256-gcm', txSecret, 1);
    const rx = new RecordReceiver('aes-256-gcm', rxSecret, 1);
    rx.open(tx.seal(Buffer.from('a')));
    assert.ok(txSecret.some((b) => b !== 0), 'epoch 0 secret still in use');
    rx.open(tx.seal(Buffer.from('b'))); // epoch 1
    assert.ok(txSecret.every((b) => b === 0), 'sender epoch 0 secret wiped after ratchet');
    assert.ok(rxSecret.every((b) => b === 0), 'receiver epoch 0 secret wiped after ratchet');
    assert.equal(rx.currentEpoch, 1);
    const tx0 = new RecordSender('chacha20-poly1305', Buffer.from(s0), 0);
    for (let i = 0; i < 5; i++) assert.equal(tx0.seal(Buffer.from('x')).readUInt16BE(0), 0);
    tx.destroy();
    rx.destroy();
    tx0.destroy();
  });

  test('a replayed record is rejected and does not disturb the window', () => {
    const s0 = randomBytes(32);
    const tx = new RecordSender('aes-256-gcm', Buffer.from(s0), 0);
    const rx = new RecordReceiver('aes-256-gcm', Buffer.from(s0), 0);
    const r0 = tx.seal(Buffer.from('zero'));
    const r1 = tx.seal(Buffer.from('one'));
    rx.open(r0);
    recErr(() => rx.open(r0), 'replay');
    rx.open(r1);
    recErr(() => rx.open(r1), 'replay');
    recErr(() => rx.open(r0), 'replay');
  });

  for (const aead of AEADS) {
    test(`${aead}: tampered ciphertext, tag or AAD is bad_record_mac and does not advance the window`, () => {
      const s0 = randomBytes(32);
      const tx = new RecordSender(aead, Buffer.from(s0), 0);
      const rx = new RecordReceiver(aead, Buffer.from(s0), 0);
      const good = tx.seal(randomBytes(40));
      const flip = (i: number): Buffer => {
        const b = Buffer.from(good);
        b[i]! ^= 0x80;
        return b;
      };
      recErr(() => rx.open(flip(10)), 'bad_record_mac');               // first ciphertext byte
      recErr(() => rx.open(flip(good.length - 20)), 'bad_record_mac'); // last ciphertext byte
      recErr(() => rx.open(flip(good.length - 1)), 'bad_record_mac');  // tag
      // AAD: change the seq (epoch stays valid with K=0) — record authenticates its own header
      const moved = Buffer.from(good);
      moved.writeBigUInt64BE(1n, 2);
      recErr(() => rx.open(moved), 'bad_record_mac');
      // a record sealed for another AAD (forged with the right key, different header, original ct)
      recErr(() => rx.open(Buffer.concat([good.subarray(0, 10), good.subarray(10, good.length - 1)])), 'bad_record_mac'); // truncated tag
      recErr(() => rx.open(good.subarray(0, 25)), 'decode_error');
      assert.equal(rx.highestSeq, -1n, 'no failed record moved the window');
      rx.open(good); // the genuine record still opens
      assert.equal(rx.highestSeq, 0n);
    });
  }

  test('wrong epoch is bad_epoch even with a valid tag; retired epochs are bad_epoch', () => {
    const s0 = randomBytes(32);
    const pt = Buffer.from('payload');
    const rx = new RecordReceiver('aes-256-gcm', Buffer.from(s0), 2);
    recErr(() => rx.open(forge('aes-256-gcm', s0, 1, 0n, pt)), 'bad_epoch'); // seq 0 must be epoch 0
    recErr(() => rx.open(forge('aes-256-gcm', s0, 0, 2n, pt)), 'bad_epoch'); // seq 2 must be epoch 1
    const rxK0 = new RecordReceiver('chacha20-poly1305', Buffer.from(s0), 0);
    recErr(() => rxK0.open(forge('chacha20-poly1305', s0, 1, 5n, pt)), 'bad_epoch');
    // epoch overflow: seq/K beyond 16 bits can never carry a matching epoch
    recErr(() => rx.open(forge('aes-256-gcm', s0, 0xffff, 2n * 65536n, pt, 0)), 'bad_epoch');
    // epoch 2 accepted, then a record of (retired) epoch 1 inside the window
    assert.equal(hex(rx.open(forge('aes-256-gcm', s0, 2, 4n, pt)).plaintext), hex(pt));
    recErr(() => rx.open(forge('aes-256-gcm', s0, 1, 3n, pt)), 'bad_epoch');
    // right epoch field but sealed with the keys of another epoch → tag fails
    recErr(() => rx.open(forge('aes-256-gcm', s0, 2, 5n, pt, 1)), 'bad_record_mac');
  });

  test('a forged future-epoch record does not ratchet the receiver', () => {
    const s0 = randomBytes(32);
    const rx = new RecordReceiver('aes-256-gcm', Buffer.from(s0), 1);
    const bad = forge('aes-256-gcm', s0, 5, 5n, Buffer.from('x'));
    bad[12]! ^= 1;
    recErr(() => rx.open(bad), 'bad_record_mac');
    assert.equal(rx.currentEpoch, 0);
    rx.open(forge('aes-256-gcm', s0, 0, 0n, Buffer.from('y')));
    rx.open(forge('aes-256-gcm', s0, 1, 1n, Buffer.from('z')));
    assert.equal(rx.currentEpoch, 1);
  });

  test('out-of-window records are replay; reordering within the window is accepted', () => {
    const s0 = randomBytes(32);
    const pt = Buffer.from('r');
    const rx = new RecordReceiver('aes-256-gcm', Buffer.from(s0), 0);
    const rec = (seq: bigint): Buffer => forge('aes-256-gcm', s0, 0, seq, pt);
    rx.open(rec(100n));
    recErr(() => rx.open(rec(36n)), 'replay');  // 100 - 64
    recErr(() => rx.open(rec(0n)), 'replay');
    rx.open(rec(37n));                          // 100 - 63: inside
    rx.open(rec(98n));
    rx.open(rec(99n));
    rx.open(rec(97n));
    recErr(() => rx.open(rec(98n)), 'replay');
    recErr(() => rx.open(rec(37n)), 'replay');
    rx.open(rec(200n));                         // big jump clears the bitmap
    recErr(() => rx.open(rec(136n)), 'replay');
    rx.open(rec(137n));
    recErr(() => rx.open(rec(200n)), 'replay');

    const w = new ReplayWindow();
    assert.ok(w.check(5n));
    w.accept(5n);
    w.accept(3n);
    assert.ok(!w.check(3n) && !w.check(5n) && w.check(4n) && w.check(6n));
  });

  test('reordered records within the window and within one epoch open (K=10)', () => {
    const s0 = randomBytes(32);
    const tx = new RecordSender('chacha20-poly1305', Buffer.from(s0), 10);
    const rx = new RecordReceiver('chacha20-poly1305', Buffer.from(s0), 10);
    const recs = Array.from({ length: 6 }, (_, i) => ({ i, b: tx.seal(Buffer.from(`m${i}`)) }));
    for (const i of [5, 3, 4, 0, 2, 1]) assert.equal(rx.open(recs[i]!.b).plaintext.toString(), `m${i}`);
    recErr(() => rx.open(recs[3]!.b), 'replay');
  });
});

describe('handshake client ↔ server', () => {
  test('3 suites × 2 AEADs × K ∈ {1,3,0} × M ∈ {0,10}', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      for (const suite of SUITES) {
        for (const aead of AEADS) {
          for (const refresh of [1, 3, 0]) {
            for (const records of [0, 10]) {
              const what = `${suite}/${aead}/K=${refresh}/M=${records}`;
              const bytes = 48;
              const r = await client(s, addr, suite, aead, { refresh, records, bytes });
              assert.equal(r.ok, true, `${what}: ${r.err} ${r.msg}`);
              assert.equal(r.recs, records, what);
              assert.match(r.cr, /^[0-9a-f]{16}$/);
              for (const k of ['connect', 'keygen', 'verify', suite === 'rsa2048' ? 'encap' : 'dh', 'kdf', 'fin', 'hs', 'rec', 'total']) {
                assert.equal(typeof r.t[k], 'number', `${what}: t.${k}`);
                assert.ok(r.t[k]! >= 0, `${what}: t.${k} >= 0`);
              }
              assert.equal(r.recTx, records * (4 + 26 + bytes), `${what}: rec_tx`);
              assert.equal(r.recRx, records * (4 + 26 + bytes), `${what}: rec_rx`);
              const op = await ops.forCr(r.cr);
              assert.equal(op.ok, true, `${what}: server ${op.err} ${op.msg}`);
              assert.equal(op.suite, suite);
              assert.equal(op.aead, aead);
              assert.equal(op.refresh, refresh);
              assert.equal(op.recs, records);
              assert.equal(op.bytesIn, r.hsTx + r.recTx + 5, `${what}: server bytes in = client bytes out + close_notify`);
              assert.equal(op.bytesOut, r.hsRx + r.recRx, `${what}: server bytes out = client bytes in`);
              assert.ok(op.hsUs! > 0 && op.wallUs >= op.hsUs!, what);
            }
          }
        }
      }
    });
  });

  test('message sizes per suite (ClientHello, ServerHello, CKE, Finished)', async () => {
    await withServer(undefined, async (s, addr) => {
      const sizes: Record<string, [number, number]> = {};
      for (const suite of SUITES) {
        const r = await client(s, addr, suite, 'aes-256-gcm');
        assert.ok(r.ok, r.msg);
        sizes[suite] = [r.hsTx, r.hsRx];
      }
      // CH = 4+7+32+2+share; Fin = 36; CKE = 4+2+256
      assert.equal(sizes['rsa2048']![0], 45 + 262 + 36);
      assert.equal(sizes['ecdhe-p256-ecdsa']![0], 45 + 65 + 36);
      assert.equal(sizes['x25519']![0], 45 + 32 + 36);
      // SH = 4+32+2+share+2+cert+2+sig; + server Fin 36. RSA SPKI DER is 294 bytes; ECDSA DER sig 70..72.
      assert.equal(sizes['rsa2048']![1], 4 + 32 + 2 + 2 + 294 + 2 + 36);
      const ecRx = sizes['ecdhe-p256-ecdsa']![1] - (4 + 32 + 2 + 65 + 2 + 91 + 2 + 36);
      assert.ok(ecRx >= 68 && ecRx <= 72, `ECDSA signature length ${ecRx}`);
      const xRx = sizes['x25519']![1] - (4 + 32 + 2 + 32 + 2 + 91 + 2 + 36);
      assert.ok(xRx >= 68 && xRx <= 72, `ECDSA signature length ${xRx}`);
    });
  });

  test('node-crypto client mode interoperates too (all suites, both AEADs)', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      for (const suite of SUITES) {
        for (const aead of AEADS) {
          const r = await client(s, addr, suite, aead, { crypto: 'node', records: 4, refresh: 2, bytes: 1000 });
          assert.ok(r.ok, `${suite}/${aead}: ${r.err} ${r.msg}`);
          assert.ok((await ops.forCr(r.cr)).ok);
        }
      }
    });
  });

  test('8 clients in parallel', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      const one = async (w: number): Promise<void> => {
        for (let i = 0; i < 6; i++) {
          const r = await client(s, addr, SUITES[(w + i) % 3]!, AEADS[i % 2]!, { crypto: 'node', records: 3, refresh: 1 });
          assert.ok(r.ok, `${r.err} ${r.msg}`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => one(w)));
      await ops.nth(47);
      assert.ok(ops.all.every((o) => o.ok));
    });
  });

  test('spec conformance: transcript, Finished MACs, signature and records recomputed independently (noble)', async () => {
    const zs: Buffer[] = [];
    setSecretTap((name, b) => {
      if (name === 'Z(client)') zs.push(Buffer.from(b));
    });
    try {
      await withServer(undefined, async (s, addr, ops) => {
        for (const suite of SUITES) {
          for (const aead of AEADS) {
            zs.length = 0;
            const proxy = await startProxy(addr.port);
            const records = 3;
            const refresh = 1;
            const r = await runClient({
              host: '127.0.0.1', port: proxy.port, suite, aead, pin: s.pin(suite), records, bytes: 33, refresh,
            });
            assert.ok(r.ok, `${suite}/${aead}: ${r.err} ${r.msg}`);
            assert.ok((await ops.forCr(r.cr)).ok); // the server saw close_notify, so the proxy has logged it
            await proxy.close();
            assert.equal(zs.length, 1);
            const z = zs[0]!;
            const c2s = proxy.log.filter((l) => l.dir === 'c2s').map((l) => l.frame);
            const s2c = proxy.log.filter((l) => l.dir === 's2c').map((l) => l.frame);
            const rsa = suite === 'rsa2048';
            const [ch, ...cRest] = c2s;
            const cke = rsa ? cRest.shift() : undefined;
            const cfin = cRest.shift()!;
            const cRecs = cRest.slice(0, records);
            const close = cRest[records]!;
            assert.equal(ch!.type, MSG.ClientHello);
            if (rsa) assert.equal(cke!.type, MSG.ClientKeyExchange);
            assert.equal(cfin.type, MSG.Finished);
            assert.deepEqual([...close.raw], [MSG.Alert, 0, 0, 1, ALERT.close_notify]);
            const [sh, sfin, ...sRecs] = s2c;
            assert.equal(sh!.type, MSG.ServerHello);
            assert.equal(sfin!.type, MSG.Finished);
            assert.equal(sRecs.length, records);

            const chm = decodeClientHello(ch!.body);
            assert.equal(chm.suite, SUITE_IDS[suite]);
            assert.equal(chm.aead, AEAD_IDS[aead]);
            assert.equal(chm.refresh, refresh);
            const shm = decodeServerHello(sh!.body);
            assert.equal(hex(nobleSha256(shm.cert)), s.pin(suite));
            if (!rsa) {
              const signed = cat(te('QSHS1 server signature'), Uint8Array.of(0), nobleSha256(ch!.raw), shm.serverRandom, shm.share);
              assert.equal(signed.length, 22 + 1 + 32 + 32 + shm.share.length);
              assert.ok(p256.verify(shm.sig, signed, shm.cert.subarray(26), { format: 'der', lowS: false }), 'signature');
            } else {
              assert.equal(shm.sig.length, 0);
              assert.equal(shm.share.length, 0);
              assert.equal(z.length, 48);
            }
            const th = nobleSha256(cat(ch!.raw, sh!.raw, ...(cke ? [cke.raw] : [])));
            const prk = nobleExtract(nobleSha256, z, cat(chm.clientRandom, shm.serverRandom));
            const master = nExpand(prk, cat(te('QSHS1 master'), th), 32);
            const cFin = nExpand(master, te('QSHS1 c fin'), 32);
            const sFin = nExpand(master, te('QSHS1 s fin'), 32);
            assert.equal(hex(cfin.body), hex(nobleHmac(nobleSha256, cFin, th)), 'client Finished');
            const th2 = nobleSha256(cat(ch!.raw, sh!.raw, ...(cke ? [cke.raw] : []), cfin.raw));
            assert.equal(hex(sfin!.body), hex(nobleHmac(nobleSha256, sFin, th2)), 'server Finished');
            const c2s0 = nExpand(master, te('QSHS1 c2s'), 32);
            const s2c0 = nExpand(master, te('QSHS1 s2c'), 32);
            for (let i = 0; i < records; i++) {
              assert.equal(cRecs[i]!.body.readUInt16BE(0), i, 'epoch = seq with K=1');
              assert.equal(cRecs[i]!.body.readBigUInt64BE(2), BigInt(i));
              const p1 = nobleOpen(aead, c2s0, cRecs[i]!.body);
              const p2 = nobleOpen(aead, s2c0, sRecs[i]!.body);
              assert.equal(p1.length, 33);
              assert.equal(hex(p1), hex(p2), 'echo carries the same plaintext');
            }
          }
        }
      });
    } finally {
      setSecretTap(undefined);
    }
  });

  test('client detects a valid echo record whose plaintext differs (E_RECORD)', async () => {
    let s2c0: Buffer | undefined;
    setSecretTap((name, b) => {
      if (name === 's2c_0' && !s2c0) s2c0 = Buffer.from(b);
    });
    try {
      await withServer(undefined, async (s, addr) => {
        let done = false;
        const proxy = await startProxy(addr.port, (dir, f) => {
          if (dir !== 's2c' || f.type !== MSG.Record || done) return undefined;
          done = true; // replace the first echo by a correctly sealed record carrying other bytes
          return [encodeFrame(MSG.Record, forge('aes-256-gcm', s2c0!, 0, 0n, Buffer.alloc(f.body.length - 26, 0x55)))];
        });
        try {
          const r = await runClient({
            host: '127.0.0.1', port: proxy.port, suite: 'x25519', aead: 'aes-256-gcm', pin: s.pin('x25519'), records: 2,
          });
          assert.equal(r.err, 'E_RECORD', `${r.err} ${r.msg}`);
          assert.match(r.msg!, /differs/);
        } finally {
          await proxy.close();
        }
      });
    } finally {
      setSecretTap(undefined);
    }
  });

  test('pin mismatch is detected by the client (E_AUTH) and the server sees handshake_failure', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      for (const suite of SUITES) {
        const wrong = suite === 'rsa2048' ? s.pin('x25519') : s.pin('rsa2048');
        const r = await client(s, addr, suite, 'aes-256-gcm', { pin: wrong, records: 2 });
        assert.equal(r.ok, false);
        assert.equal(r.err, 'E_AUTH');
        assert.match(r.msg!, /pin/);
        assert.equal(r.t.hs, undefined, 'handshake did not complete');
        const op = await ops.forCr(r.cr);
        assert.equal(op.ok, false);
        assert.equal(op.err, 'peer_alert:handshake_failure');
      }
      const r = await client(s, addr, 'x25519', 'aes-256-gcm', { pin: 'ab'.repeat(31) });
      assert.equal(r.err, 'E_ARGS');
    });
  });
});

describe('server faults (for testing the node)', () => {
  const cases: { fault: Fault; records: number; suites: readonly SuiteName[]; err: string; msg: RegExp; serverErr: string }[] = [
    { fault: 'tamper', records: 2, suites: SUITES, err: 'E_RECORD', msg: /authentication/, serverErr: 'peer_alert:bad_record_mac' },
    { fault: 'replay', records: 3, suites: SUITES, err: 'E_REPLAY', msg: /replay/, serverErr: 'peer_alert:replay' },
    { fault: 'bad-sig', records: 1, suites: ['ecdhe-p256-ecdsa', 'x25519'], err: 'E_AUTH', msg: /signature/, serverErr: 'peer_alert:handshake_failure' },
    { fault: 'bad-finished', records: 1, suites: SUITES, err: 'E_AUTH', msg: /Finished/, serverErr: 'peer_alert:handshake_failure' },
    { fault: 'wrong-key', records: 1, suites: SUITES, err: 'E_AUTH', msg: /pin/, serverErr: 'peer_alert:handshake_failure' },
  ];
  for (const c of cases) {
    test(`fault ${c.fault} → client ${c.err}`, async () => {
      await withServer({ fault: c.fault }, async (s, addr, ops) => {
        for (const suite of c.suites) {
          for (const crypto of ['noble', 'node'] as const) {
            const r = await client(s, addr, suite, 'chacha20-poly1305', { records: c.records, refresh: 1, crypto });
            assert.equal(r.ok, false, `${suite}: should fail`);
            assert.equal(r.err, c.err, `${suite}: ${r.err} ${r.msg}`);
            assert.match(r.msg!, c.msg);
            const op = await ops.forCr(r.cr);
            assert.equal(op.ok, false);
            assert.equal(op.err, c.serverErr, `${suite}: server ${op.err} ${op.msg}`);
          }
        }
      });
    });
  }

  test('fault bad-sig has nothing to corrupt in rsa2048 (no signature): the handshake succeeds', async () => {
    await withServer({ fault: 'bad-sig' }, async (s, addr) => {
      const r = await client(s, addr, 'rsa2048', 'aes-256-gcm', { records: 1 });
      assert.ok(r.ok, r.msg);
    });
  });

  test('fault tamper is detected with a single record', async () => {
    await withServer({ fault: 'tamper' }, async (s, addr) => {
      const r = await client(s, addr, 'x25519', 'aes-256-gcm', { records: 1 });
      assert.equal(r.err, 'E_RECORD');
    });
  });
});

describe('server robustness', () => {
  test('garbage, oversize, truncated and malformed input: alert + close, and the next client is served', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      let n = 0;
      const next = (): Promise<ServerOp> => ops.nth(n++);

      expectAlert(await rawExchange(addr.port, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]), ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');

      expectAlert(await rawExchange(addr.port, [randomBytes(65536)], false), ALERT.decode_error);
      const rnd = await next();
      assert.ok(rnd.err === 'decode_error', `random bytes: ${rnd.err}`);

      expectAlert(await rawExchange(addr.port, [Buffer.from([0x01, 0xff, 0xff, 0xff])], false), ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');

      // truncated frame: header promises 100 bytes, 10 arrive, then FIN
      const t = await rawExchange(addr.port, [Buffer.from([0x01, 0x00, 0x00, 0x64]), randomBytes(10)]);
      assert.equal(t.length, 0);
      assert.equal((await next()).err, 'truncated');

      // connect and close at once
      assert.equal((await rawExchange(addr.port, [])).length, 0);
      assert.equal((await next()).err, 'eof');

      // malformed ClientHello body, wrong first message, bad version, unknown suite / aead, wrong share length
      expectAlert(await rawExchange(addr.port, [encodeFrame(MSG.ClientHello, Buffer.alloc(5))], false), ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');
      expectAlert(await rawExchange(addr.port, [encodeFinished(Buffer.alloc(32))], false), ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');
      const ch = (o: Partial<Parameters<typeof encodeClientHello>[0]>): Buffer => encodeClientHello({
        version: 1, suite: 3, aead: 1, refresh: 0, clientRandom: randomBytes(32), share: randomBytes(32), ...o,
      });
      for (const [m, code, err] of [
        [ch({ version: 2 }), ALERT.unsupported, 'unsupported'],
        [ch({ suite: 99 }), ALERT.unsupported, 'unsupported'],
        [ch({ aead: 0 }), ALERT.unsupported, 'unsupported'],
        [ch({ share: randomBytes(31) }), ALERT.decode_error, 'decode_error'],
        [ch({ suite: 2, share: Buffer.concat([Buffer.of(2), randomBytes(64)]) }), ALERT.decode_error, 'decode_error'],
      ] as const) {
        expectAlert(await rawExchange(addr.port, [m], false), code);
        const op = await next();
        assert.equal(op.err, err);
        assert.match(op.cr, /^[0-9a-f]{16}$/, 'cr is known once a ClientHello parsed');
      }
      // an invalid P-256 point (right length, not on the curve): ServerHello, then handshake_failure
      const offCurve = Buffer.concat([Buffer.of(4), Buffer.alloc(64, 1)]);
      const resp = parseFrames(await rawExchange(addr.port, [ch({ suite: 2, share: offCurve })], false));
      assert.deepEqual(resp.map((f) => f.type), [MSG.ServerHello, MSG.Alert]);
      assert.equal(decodeAlert(resp[1]!.body).code, ALERT.handshake_failure);
      assert.equal((await next()).err, 'handshake_failure');

      // the server still works
      for (const suite of SUITES) {
        const r = await client(s, addr, suite, 'aes-256-gcm', { records: 2 });
        assert.ok(r.ok, `${suite}: ${r.err} ${r.msg}`);
      }
    });
  });

  test('a wrong client Finished gets Alert(handshake_failure)', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      const sk = x25519.utils.randomSecretKey();
      const chFrame = encodeClientHello({
        version: 1, suite: SUITE_IDS.x25519, aead: 1, refresh: 0, clientRandom: randomBytes(32),
        share: Buffer.from(x25519.getPublicKey(sk)),
      });
      const out = await new Promise<Buffer>((resolve) => {
        const sock = connect(addr.port, '127.0.0.1');
        const got: Buffer[] = [];
        const r = new FrameReader();
        sock.on('error', () => undefined);
        sock.on('data', (c: Buffer) => {
          got.push(c);
          r.push(c);
          const f = r.next();
          if (f && f.type === MSG.ServerHello) sock.write(encodeFinished(Buffer.alloc(32, 0xaa)));
        });
        sock.on('close', () => resolve(Buffer.concat(got)));
        sock.write(chFrame);
      });
      const frames = parseFrames(out);
      assert.deepEqual(frames.map((f) => f.type), [MSG.ServerHello, MSG.Alert]);
      assert.equal(decodeAlert(frames[1]!.body).code, ALERT.handshake_failure);
      assert.equal((await ops.nth(0)).err, 'handshake_failure');
      assert.ok(s.pin('x25519'));
    });
  });

  test('server rejects tampered and replayed client records (bad_record_mac, replay alerts)', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      // tamper: flip a ciphertext bit of the client's first record
      let seen = false;
      const p1 = await startProxy(addr.port, (dir, f) => {
        if (dir !== 'c2s' || f.type !== MSG.Record || seen) return undefined;
        seen = true;
        const b = Buffer.from(f.raw);
        b[4 + 12]! ^= 1;
        return [b];
      });
      const r1 = await runClient({ host: '127.0.0.1', port: p1.port, suite: 'x25519', aead: 'aes-256-gcm', pin: s.pin('x25519'), records: 2 });
      await p1.close();
      assert.equal(r1.err, 'E_ALERT');
      assert.match(r1.msg!, /bad_record_mac/);
      assert.equal((await ops.forCr(r1.cr)).err, 'bad_record_mac');

      // replay: deliver the client's first record twice
      let dup = false;
      const p2 = await startProxy(addr.port, (dir, f) => {
        if (dir !== 'c2s' || f.type !== MSG.Record || dup) return undefined;
        dup = true;
        return [f.raw, f.raw];
      });
      const r2 = await runClient({ host: '127.0.0.1', port: p2.port, suite: 'ecdhe-p256-ecdsa', aead: 'chacha20-poly1305', pin: s.pin('ecdhe-p256-ecdsa'), records: 3 });
      await p2.close();
      assert.equal(r2.err, 'E_ALERT');
      assert.match(r2.msg!, /replay/);
      const op2 = await ops.forCr(r2.cr);
      assert.equal(op2.err, 'replay');
      assert.equal(op2.recs, 1);
    });
  });

  test('idle connections time out (server) and silent servers time out (client)', async () => {
    await withServer({ recordTimeoutMs: 150 }, async (s, addr, ops) => {
      // connect, say nothing; the server must close on its own
      const b = await rawExchange(addr.port, [], false);
      assert.equal(b.length, 0);
      const op = await ops.nth(0);
      assert.equal(op.err, 'timeout');
      assert.ok(op.wallUs >= 150_000 * 0.9, `wall ${op.wallUs}`);
      // stall mid-handshake (ClientHello sent, no Finished)
      const m = encodeClientHello({ version: 1, suite: 3, aead: 2, refresh: 0, clientRandom: randomBytes(32), share: Buffer.from(x25519.getPublicKey(x25519.utils.randomSecretKey())) });
      const got = parseFrames(await rawExchange(addr.port, [m], false));
      assert.deepEqual(got.map((f) => f.type), [MSG.ServerHello]);
      assert.equal((await ops.nth(1)).err, 'timeout');
      assert.ok(s.pin('rsa2048'));
    });
    // a TCP server that accepts and never answers
    const muted: Socket[] = [];
    const mute = createServer((sock) => muted.push(sock));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as { port: number }).port;
    try {
      const r = await runClient({ host: '127.0.0.1', port, suite: 'x25519', aead: 'aes-256-gcm', pin: '00'.repeat(32), timeoutMs: 150 });
      assert.equal(r.err, 'E_TIMEOUT');
    } finally {
      for (const sock of muted) sock.destroy();
      await new Promise<void>((r) => mute.close(() => r()));
    }
    // nobody listening
    const r = await runClient({ host: '127.0.0.1', port, suite: 'x25519', aead: 'aes-256-gcm', pin: '00'.repeat(32) });
    assert.equal(r.err, 'E_NET');
  });

  test('close() ends open connections and reports them', async () => {
    const s = new HandshakeServer({ keys: KEYS });
    const ops = new Ops(s);
    const addr = await s.start();
    const sock = connect(addr.port, '127.0.0.1');
    try {
      sock.on('error', () => undefined);
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      await new Promise<void>((r) => sock.on('connect', () => r()));
      sock.write(Buffer.from([0x01, 0x00])); // half a header, so the server is surely holding the connection
      // A complete exchange on a second connection: the server accepted the first one before this one.
      const r = await client(s, addr, 'x25519', 'aes-256-gcm');
      assert.ok(r.ok);
      await s.close();
      await closed;
      const op = await ops.wait((o) => o.cr === '');
      assert.equal(op.err, 'server_closed');
      assert.equal(op.bytesIn, 2);
      await s.close(); // idempotent
    } finally {
      sock.destroy();
      await s.close();
    }
  });
});

describe('secrets', () => {
  test('no session secret appears in ops, client results or error messages; all are wiped', async () => {
    const tapped: { name: string; value: Buffer; live: Buffer }[] = [];
    setSecretTap((name, live) => tapped.push({ name, value: Buffer.from(live), live }));
    const texts: string[] = [];
    try {
      const run = async (fault: Fault | undefined, suite: SuiteName, aead: AeadName, more: Partial<ClientOptions> = {}) => {
        await withServer({ fault }, async (s, addr, ops) => {
          const r = await client(s, addr, suite, aead, { records: 4, refresh: 1, ...more });
          const op = await ops.forCr(r.cr);
          texts.push(JSON.stringify(r), JSON.stringify(op), r.msg ?? '', op.msg ?? '');
        });
      };
      for (const suite of SUITES) {
        for (const aead of AEADS) await run(undefined, suite, aead);
        await run('tamper', suite, 'aes-256-gcm');
        await run('bad-finished', suite, 'chacha20-poly1305');
        await run(undefined, suite, 'aes-256-gcm', { crypto: 'node', refresh: 0 });
      }
      await run('replay', 'x25519', 'aes-256-gcm');
    } finally {
      setSecretTap(undefined);
    }
    const names = new Set(tapped.map((t) => t.name));
    for (const n of ['Z', 'PRK', 'master', 'c_fin', 's_fin', 'c2s_0', 's2c_0', 'key', 'iv', 'secret']) {
      assert.ok(names.has(n), `tap saw ${n}`);
    }
    assert.ok(tapped.length > 100, `${tapped.length} secrets observed`);
    const haystack = texts.join('\n').toLowerCase();
    const b64 = texts.join('\n');
    for (const t of tapped) {
      assert.ok(t.value.some((b) => b !== 0), `${t.name} was non-zero when derived`);
      const h = t.value.toString('hex');
      assert.ok(!haystack.includes(h), `${t.name} (hex) leaked`);
      assert.ok(!haystack.includes(h.slice(0, 16)), `${t.name} (hex prefix) leaked`);
      assert.ok(!b64.includes(t.value.toString('base64')), `${t.name} (base64) leaked`);
      assert.ok(t.live.every((b) => b === 0), `${t.name} was not wiped`);
    }
  });
});

describe('server keys', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qslab-hs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('save/load round trip keeps the pins; files are private', async () => {
    saveServerKeys(dir, KEYS);
    assert.equal(statSync(join(dir, 'rsa2048.key.pem')).mode & 0o077, 0);
    assert.equal(statSync(join(dir, 'p256.key.pem')).mode & 0o077, 0);
    const loaded = loadServerKeys(dir);
    const a = new HandshakeServer({ keys: KEYS });
    const b = new HandshakeServer({ keys: loaded });
    for (const suite of SUITES) {
      assert.equal(a.pin(suite), b.pin(suite));
      assert.match(a.pin(suite), /^[0-9a-f]{64}$/);
    }
    assert.notEqual(a.pin('rsa2048'), a.pin('x25519'));
    assert.equal(a.pin('x25519'), a.pin('ecdhe-p256-ecdsa'));
    assert.equal(loadOrCreateServerKeys(dir).rsa.asymmetricKeyDetails?.modulusLength, 2048);
    const fresh = join(dir, 'new');
    const made = loadOrCreateServerKeys(fresh);
    assert.equal(new HandshakeServer({ keys: made }).pin('rsa2048'), new HandshakeServer({ keys: loadServerKeys(fresh) }).pin('rsa2048'));
    assert.throws(() => new HandshakeServer({ keys: { rsa: KEYS.ecdsa, ecdsa: KEYS.ecdsa, mldsa: KEYS.mldsa } }), /RSA/);
    // a server without keys generates them on start()
    const g = new HandshakeServer();
    assert.throws(() => g.pin('rsa2048'), /not ready/);
    await g.start();
    assert.match(g.pin('rsa2048'), /^[0-9a-f]{64}$/);
    await g.close();
  });
});
