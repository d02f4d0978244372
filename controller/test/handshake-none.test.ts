// The plaintext baseline suite `none` (firmware/HANDSHAKE.md §12, the seed paper's "No Encryption" row): wire
// format, plaintext record layer, the server's allowPlaintext gate, the TS reference client, and the real POSIX
// node against the server (interop-cases.ts plaintextInteropCases).
// Run: node controller/run-tests.mjs handshake-none

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

import { generateServerKeys, HandshakeServer, type ServerKeys } from '../handshake/server.js';
import {
  PLAINTEXT_RECORD_OVERHEAD, PlaintextRecordReceiver, PlaintextRecordSender, RECORD_OVERHEAD, RecordError, RecordSender,
} from '../handshake/record.js';
import {
  AEAD_IDS, AEAD_NONE, ALERT, CLASSICAL_SUITES, decodeAlert, decodeClientHello, decodeServerHello, encodeClientHello,
  encodeFrame, encodeServerHello, FrameReader, HELLO_FLAG_PLAINTEXT, isPlaintextSuiteId, isSuiteName, MSG,
  PLAINTEXT_SUITES, PQ_SUITES, QKD_SUITES, SUITE_IDS, SUITE_INFO, SUITES, suiteName, WireError, type Frame,
} from '../handshake/wire.js';
import { runClient } from '../handshake/client.js';
import { client, withTrackedServer, type Ops } from './harness.js';
import { DEFAULT_TARGET, plaintextInteropCases } from './interop-cases.js';

let KEYS: ServerKeys;
before(() => {
  KEYS = generateServerKeys();
});

const withServer = <T>(
  opts: { allowPlaintext?: boolean; fault?: 'tamper' | 'replay' },
  fn: (s: HandshakeServer, addr: { host: string; port: number }, ops: Ops) => Promise<T>,
): Promise<T> => withTrackedServer({ keys: KEYS, ...opts }, fn);

/** Raw TCP: write `data`, return every frame the server sent until it closed. */
function rawExchange(port: number, data: Buffer[]): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const r = new FrameReader();
    s.on('data', (c: Buffer) => r.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      const out: Frame[] = [];
      for (let f = r.next(); f; f = r.next()) out.push(f);
      resolve(out);
    });
    s.on('connect', () => {
      for (const d of data) s.write(d);
      s.end();
    });
    setTimeout(() => reject(new Error('rawExchange: server did not close within 5 s')), 5000).unref();
  });
}

const noneHello = (over: Partial<Parameters<typeof encodeClientHello>[0]> = {}): Buffer => encodeClientHello({
  version: 1, suite: SUITE_IDS.none, aead: AEAD_NONE, refresh: 0, clientRandom: randomBytes(32), share: Buffer.alloc(0),
  flags: HELLO_FLAG_PLAINTEXT, ...over,
});

function onlyAlert(frames: Frame[]): { code: number; reason: string } {
  assert.equal(frames.length, 1, `expected one frame, got ${frames.map((f) => f.type).join(',')}`);
  assert.equal(frames[0]!.type, MSG.Alert);
  return decodeAlert(frames[0]!.body);
}

describe('none: identifiers and wire format', () => {
  test('suite id 10, in SUITES and PLAINTEXT_SUITES but in none of the default lists', () => {
    assert.equal(SUITE_IDS.none, 10);
    assert.equal(suiteName(10), 'none');
    assert.ok(isSuiteName('none') && isPlaintextSuiteId(10) && !isPlaintextSuiteId(SUITE_IDS.x25519));
    assert.deepEqual(PLAINTEXT_SUITES, ['none']);
    assert.ok(SUITES.includes('none'));
    for (const list of [CLASSICAL_SUITES, PQ_SUITES, QKD_SUITES] as readonly (readonly string[])[]) assert.ok(!list.includes('none'));
    assert.equal(new Set(Object.values(SUITE_IDS)).size, SUITES.length, 'ids are unique');
    const info = SUITE_INFO.none;
    assert.equal(info.plaintext, true);
    assert.equal(info.clientShare, 0);
    assert.equal(info.serverShare, 0);
    assert.equal(info.clientDsa, undefined, 'no mutual mode');
    assert.equal(info.qkd, undefined);
    assert.ok(!(Object.values(AEAD_IDS) as number[]).includes(AEAD_NONE), 'aead 0 is not an AEAD');
  });

  test('ClientHello says suite 10, aead 0 and the plaintext flag; ServerHello ends with the plaintext flag', () => {
    const cr = Buffer.alloc(32, 0x11);
    const ch = noneHello({ clientRandom: cr, refresh: 7 });
    assert.equal(ch.length, 46);
    assert.equal(ch.toString('hex'), `0100002a` + `010a0000000007` + '11'.repeat(32) + '0000' + '02');
    const d = decodeClientHello(ch.subarray(4));
    assert.equal(d.suite, 10);
    assert.equal(d.aead, 0);
    assert.equal(d.flags, HELLO_FLAG_PLAINTEXT);
    assert.equal(d.qkdUpd, undefined);
    const e = Buffer.alloc(0);
    const sh = encodeServerHello({ serverRandom: Buffer.alloc(32, 0x22), share: e, cert: e, sig: e, flags: HELLO_FLAG_PLAINTEXT });
    assert.equal(sh.length, 43);
    assert.equal(sh.subarray(36).toString('hex'), '00000000000002');
    const ds = decodeServerHello(sh.subarray(4), false, true);
    assert.equal(ds.flags, HELLO_FLAG_PLAINTEXT);
    assert.equal(ds.cert.length + ds.sig.length + ds.share.length, 0);
    // a plaintext ServerHello without its flags byte is truncated; other suites' ServerHellos carry none
    assert.throws(() => decodeServerHello(sh.subarray(4, sh.length - 1), false, true), (x: unknown) => x instanceof WireError && x.alert === 'decode_error');
    assert.throws(() => decodeServerHello(sh.subarray(4), false, false), /trailing/);
  });

  test("the server's pin for none is SHA-256 of the empty cert (it pins nothing)", () => {
    const s = new HandshakeServer({ keys: KEYS });
    assert.equal(s.pin('none'), createHash('sha256').update(Buffer.alloc(0)).digest('hex'));
  });
});

describe('none: plaintext records', () => {
  test('same header as the AEAD records, plaintext in the clear, no tag; refresh moves only the counter', () => {
    const tx = new PlaintextRecordSender(3);
    const aead = new RecordSender('aes-256-gcm', Buffer.alloc(32, 1), 3);
    const rx = new PlaintextRecordReceiver(3);
    assert.equal(PLAINTEXT_RECORD_OVERHEAD, RECORD_OVERHEAD - 16);
    const bodies: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const pt = Buffer.alloc(40, 0xa0 + i);
      const b = tx.seal(pt);
      const a = aead.seal(pt);
      assert.equal(b.length, a.length - 16);
      assert.deepEqual(b.subarray(0, 10), a.subarray(0, 10), `record ${i}: epoch | seq as for an AEAD record`);
      assert.deepEqual(b.subarray(10), pt);
      bodies.push(b);
    }
    aead.destroy();
    assert.equal(tx.nextSeq, 10n);
    assert.deepEqual(rx.open(bodies[0]!).plaintext, Buffer.alloc(40, 0xa0));
    const err = (fn: () => unknown, code: string) => assert.throws(fn, (x: unknown) => x instanceof RecordError && x.code === code, code);
    err(() => rx.open(bodies[0]!), 'replay');
    // no MAC: a changed payload is accepted as it is (the client's echo comparison catches it)
    const t = Buffer.from(bodies[1]!);
    t[15]! ^= 1;
    assert.equal(rx.open(t).plaintext[5], 0xa1 ^ 1);
    err(() => rx.open(bodies[1]!), 'replay');
    const e = Buffer.from(bodies[2]!);
    e[1] = 1;
    err(() => rx.open(e), 'bad_epoch');
    assert.equal(rx.open(bodies[7]!).epoch, 2);
    assert.equal(rx.currentEpoch, 2);
    err(() => rx.open(bodies[5]!), 'bad_epoch'); // epoch 1 retired
    assert.equal(rx.open(bodies[6]!).seq, 6n);
    err(() => rx.open(bodies[8]!.subarray(0, 9)), 'decode_error');
    tx.destroy();
    rx.destroy();
    err(() => tx.seal(Buffer.alloc(1)), 'internal_error');
    err(() => rx.open(bodies[9]!), 'internal_error');
  });
});

describe('none: server gate (allowPlaintext)', () => {
  test('refused with Alert(unsupported) unless the server allows plaintext', async () => {
    await withServer({}, async (_s, addr, ops) => {
      const a = onlyAlert(await rawExchange(addr.port, [noneHello()]));
      assert.equal(a.code, ALERT.unsupported);
      assert.equal(a.reason, 'plaintext suite none not allowed (server allowPlaintext off)');
      assert.ok(a.reason.length <= 63, 'fits what the node keeps of an alert reason');
      const op = await ops.nth(0);
      assert.equal(op.ok, false);
      assert.equal(op.err, 'unsupported');
      assert.equal(op.suite, 'none');
      // the reference client gets the reason too
      const r = await client(_s, addr, 'none', 'aes-256-gcm', { records: 2 });
      assert.equal(r.ok, false);
      assert.equal(r.err, 'E_ALERT');
      assert.match(r.msg!, /unsupported: plaintext suite none not allowed/);
    });
    const off = new HandshakeServer({ keys: KEYS, allowPlaintext: false });
    const addr = await off.start();
    try {
      assert.equal(onlyAlert(await rawExchange(addr.port, [noneHello()])).code, ALERT.unsupported);
    } finally {
      await off.close();
    }
  });

  test('with allowPlaintext: wrong aead, missing or misplaced plaintext flag, mutual or a share are refused', async () => {
    await withServer({ allowPlaintext: true }, async (_s, addr) => {
      const cases: [Buffer, number, RegExp][] = [
        [noneHello({ aead: AEAD_IDS['aes-256-gcm'] }), ALERT.unsupported, /needs aead 0/],
        [noneHello({ flags: 0 }), ALERT.unsupported, /needs the plaintext flag/],
        [noneHello({ flags: HELLO_FLAG_PLAINTEXT | 0x01 }), ALERT.unsupported, /mutual authentication is not defined for none/],
        [noneHello({ flags: HELLO_FLAG_PLAINTEXT | 0x80 }), ALERT.unsupported, /flags 0x82/],
        [noneHello({ share: Buffer.alloc(32) }), ALERT.decode_error, /share must be 0 bytes/],
        [noneHello({ suite: SUITE_IDS.x25519, aead: 1, share: Buffer.alloc(32, 9) }), ALERT.unsupported, /plaintext flag with suite x25519/],
        [noneHello({ suite: SUITE_IDS.x25519, aead: AEAD_NONE, flags: 0, share: Buffer.alloc(32, 9) }), ALERT.unsupported, /unsupported aead 0/],
      ];
      for (const [ch, code, why] of cases) {
        const a = onlyAlert(await rawExchange(addr.port, [ch]));
        assert.equal(a.code, code, a.reason);
        assert.match(a.reason, why);
      }
    });
  });
});

describe('none: reference client against the server', () => {
  test('hello exchange plus M echoed records; steps connect/hs/rec/total; bytes are the AEAD ones minus the tag', async () => {
    await withServer({ allowPlaintext: true }, async (s, addr, ops) => {
      const r = await client(s, addr, 'none', 'chacha20-poly1305', { records: 5, bytes: 100, refresh: 2 });
      assert.equal(r.ok, true, r.msg);
      assert.deepEqual(Object.keys(r.t).sort(), ['connect', 'hs', 'rec', 'total']);
      assert.equal(r.recs, 5);
      assert.equal(r.hsTx, 46);
      assert.equal(r.hsRx, 43);
      assert.equal(r.recTx, 5 * 114);
      assert.equal(r.recRx, 5 * 114);
      const op = await ops.forCr(r.cr);
      assert.equal(op.ok, true, op.msg);
      assert.equal(op.suite, 'none');
      assert.equal(op.aead, 'none');
      assert.equal(op.refresh, 2);
      assert.equal(op.recs, 5);
      assert.equal(op.bytesIn, 46 + 5 * 114 + 5);
      assert.equal(op.bytesOut, 43 + 5 * 114);
      const x = await client(s, addr, 'x25519', 'chacha20-poly1305', { records: 5, bytes: 100, refresh: 2 });
      assert.equal(x.ok, true, 'allowPlaintext changes nothing for the other suites');
      assert.equal(x.recTx, r.recTx + 5 * 16);
      const zero = await client(s, addr, 'none', 'aes-256-gcm', { records: 0 });
      assert.equal(zero.ok, true);
      assert.equal(zero.recTx, 0);
    });
  });

  test('server faults: a tampered echo is E_RECORD (bad_record_mac), a replayed one E_REPLAY', async () => {
    for (const [fault, code, alert] of [['tamper', 'E_RECORD', 'bad_record_mac'], ['replay', 'E_REPLAY', 'replay']] as const) {
      await withServer({ allowPlaintext: true, fault }, async (s, addr, ops) => {
        const r = await client(s, addr, 'none', 'aes-256-gcm', { records: 3, bytes: 16 });
        assert.equal(r.ok, false);
        assert.equal(r.err, code, r.msg);
        if (fault === 'tamper') assert.match(r.msg!, /echo of record 0 \(seq 0\) differs from what was sent \(plaintext, no MAC\)/);
        assert.equal((await ops.forCr(r.cr)).err, `peer_alert:${alert}`);
      });
    }
  });

  test('a ServerHello that does not confirm plaintext, or carries a key, is decode_error (E_NET)', async () => {
    const sr = Buffer.alloc(32, 0x33);
    for (const [sh, why] of [
      [Buffer.concat([sr, Buffer.alloc(6), Buffer.of(0)]), /does not confirm plaintext \(flags 0x00\)/],
      [Buffer.concat([sr, Buffer.from('00000001cc0000', 'hex'), Buffer.of(2)]), /carries a key share, key or signature/],
      [Buffer.concat([sr, Buffer.alloc(6)]), /truncated/],
      [Buffer.concat([sr, Buffer.alloc(6), Buffer.of(2, 2)]), /trailing/],
    ] as const) {
      const got: Frame[] = [];
      const srv = createServer((sock: Socket) => {
        const r = new FrameReader();
        sock.on('data', (c: Buffer) => {
          r.push(c);
          for (let f = r.next(); f; f = r.next()) {
            got.push(f);
            if (f.type === MSG.ClientHello) sock.write(encodeFrame(MSG.ServerHello, sh));
          }
        });
        sock.on('error', () => undefined);
      });
      await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
      const port = (srv.address() as { port: number }).port;
      try {
        const r = await runClient({ host: '127.0.0.1', port, suite: 'none', aead: 'aes-256-gcm', pin: '00'.repeat(32), records: 1, timeoutMs: 2000 });
        assert.equal(r.ok, false);
        assert.equal(r.err, 'E_NET', r.msg);
        assert.match(r.msg!, /decode_error/);
        assert.match(r.msg!, why);
        assert.equal(r.recTx, 0, 'no record left the client');
        await new Promise((res) => setTimeout(res, 20));
        const alert = got.find((f) => f.type === MSG.Alert);
        assert.ok(alert && decodeAlert(alert.body).code === ALERT.decode_error);
      } finally {
        await new Promise<void>((res) => srv.close(() => res()));
      }
    }
  });
});

// The real POSIX node (OpenSSL port) against the server; interop-mbedtls.test.ts runs the same cases on the
// mbedTLS build.
plaintextInteropCases(DEFAULT_TARGET);
