// QSHS/1 post-quantum suites and mutual authentication (firmware/HANDSHAKE.md §10): TS client ↔ server.
// Run: node --test dist/controller/test/handshake-pq.test.js

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expand as nobleExpand, extract as nobleExtract } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { p256 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';

import {
  HandshakeServer, generateServerKeys, loadServerKeys, saveServerKeys, loadOrCreateServerKeys,
  type Fault, type ServerKeys, type ServerOp,
} from '../handshake/server.js';
import { runClient } from '../handshake/client.js';
import { mldsaKeyFile, mldsaSeedFromPem, mldsaSeedToPem } from '../handshake/keys.js';
import { setSecretTap } from '../handshake/keyschedule.js';
import { Ops, withTrackedServer, client, startProxy } from './harness.js';
import {
  ALERT, AEADS, CH_FLAG_MUTUAL, decodeAlert, decodeClientAuth, decodeClientHello, decodeServerHello,
  encodeClientAuth, encodeClientHello, encodeFinished, FrameReader, MSG, PQ_SUITES, SUITE_IDS, SUITE_INFO,
  type Frame, type PqSuiteName,
} from '../handshake/wire.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers (the same shapes as in handshake.test.ts)

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const te = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const cat = (...a: Uint8Array[]): Uint8Array => Buffer.concat(a);
const nExpand = (prk: Uint8Array, info: Uint8Array, n: number): Uint8Array => nobleExpand(nobleSha256, prk, info, n);
const NOBLE_DSA = { 44: ml_dsa44, 65: ml_dsa65, 87: ml_dsa87 } as const;
const CTX = te('QSHS1');

/** Sizes from HANDSHAKE.md §10.4: [client share, server share, cert, sig (ECDSA: undefined), client pk, client sig]. */
const SIZES: Record<PqSuiteName, [number, number, number, number | undefined, number, number]> = {
  'mlkem512-mldsa44': [800, 768, 1312, 2420, 1312, 2420],
  'mlkem768-mldsa65': [1184, 1088, 1952, 3309, 1952, 3309],
  'mlkem1024-mldsa87': [1568, 1568, 2592, 4627, 2592, 4627],
  'x25519mlkem768': [1216, 1120, 91, undefined, 1952, 3309],
};

let KEYS: ServerKeys;
before(() => {
  KEYS = generateServerKeys();
});


const withServer = <T>(
  opts: { fault?: Fault; recordTimeoutMs?: number } | undefined,
  fn: (s: HandshakeServer, addr: { host: string; port: number }, ops: Ops) => Promise<T>,
): Promise<T> => withTrackedServer({ keys: KEYS, ...(opts ?? {}) }, fn);

function parseFrames(b: Buffer): Frame[] {
  const r = new FrameReader();
  r.push(b);
  const out: Frame[] = [];
  for (let f = r.next(); f; f = r.next()) out.push(f);
  assert.equal(r.buffered, 0, 'trailing partial frame');
  return out;
}

/** Raw TCP client: send `first`; `onFrame` may answer each server frame; returns all the server sent until it closed. */
function rawSession(port: number, first: Buffer[], onFrame?: (f: Frame, sock: Socket) => void): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    const r = new FrameReader();
    sock.on('error', () => undefined);
    sock.on('data', (c: Buffer) => {
      got.push(c);
      r.push(c);
      for (let f = r.next(); f; f = r.next()) onFrame?.(f, sock);
    });
    sock.on('close', () => resolve(parseFrames(Buffer.concat(got))));
    sock.on('connect', () => {
      for (const d of first) sock.write(d);
    });
    setTimeout(() => reject(new Error('rawSession: server did not close within 5 s')), 5000).unref();
  });
}


const hybridShare = (): { sk: Uint8Array; share: Buffer } => {
  const { publicKey } = ml_kem768.keygen();
  const sk = x25519.utils.randomSecretKey();
  return { sk, share: Buffer.concat([publicKey, x25519.getPublicKey(sk)]) };
};

// ---------------------------------------------------------------------------------------------------------

describe('post-quantum suites: client ↔ server', () => {
  test('4 PQ suites × 2 AEADs × mutual on/off, with records and key refresh', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      const fps = new Map<number, string>();
      for (const suite of PQ_SUITES) {
        for (const aead of AEADS) {
          for (const mutual of [false, true]) {
            const what = `${suite}/${aead}/mutual=${mutual}`;
            const r = await client(s, addr, suite, aead, { records: 5, refresh: 2, bytes: 100, mutual });
            assert.equal(r.ok, true, `${what}: ${r.err} ${r.msg}`);
            assert.equal(r.recs, 5);
            const hybrid = suite === 'x25519mlkem768';
            const steps = ['connect', 'keygen', 'verify', 'decap', 'kdf', 'fin', 'hs', 'rec', 'total'];
            if (hybrid) steps.push('dh');
            if (mutual) steps.push('sign');
            assert.deepEqual(Object.keys(r.t).sort(), steps.sort(), what);
            for (const k of steps) assert.ok(r.t[k]! >= 0, `${what}: t.${k}`);
            // sizes (§10.4)
            const [cs, ss, cert, sig, cpk, csig] = SIZES[suite];
            const caLen = mutual ? 8 + cpk + csig : 0;
            assert.equal(r.hsTx, 45 + cs + (mutual ? 1 : 0) + caLen + 36, `${what}: hs_tx`);
            const sh = r.hsRx - 36 - (42 + ss + cert);
            if (sig === undefined) assert.ok(sh >= 68 && sh <= 72, `${what}: ECDSA sig ${sh}`);
            else assert.equal(sh, sig, `${what}: ML-DSA sig`);
            assert.equal(r.recTx, 5 * (4 + 26 + 100));
            const op = await ops.forCr(r.cr);
            assert.equal(op.ok, true, `${what}: server ${op.err} ${op.msg}`);
            assert.equal(op.suite, suite);
            assert.equal(op.mutual, mutual);
            assert.equal(op.recs, 5);
            assert.equal(op.bytesIn, r.hsTx + r.recTx + 5);
            assert.equal(op.bytesOut, r.hsRx + r.recRx);
            if (mutual) {
              assert.match(r.clientKey!, /^[0-9a-f]{64}$/);
              assert.equal(op.clientKey, r.clientKey, `${what}: server reports the client key fingerprint`);
              const lvl = SUITE_INFO[suite].clientDsa!;
              // one client key per level and process
              if (fps.has(lvl)) assert.equal(fps.get(lvl), r.clientKey);
              fps.set(lvl, r.clientKey!);
            } else {
              assert.equal(op.clientKey, undefined);
              assert.equal(r.clientKey, undefined);
            }
          }
        }
      }
      assert.equal(fps.size, 3);
      assert.equal(new Set(fps.values()).size, 3, 'a different client key per level');
    });
  });

  test('node-crypto client mode (X25519/ECDSA via OpenSSL) and a pinned client seed', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      const seed = new Uint8Array(32).fill(7);
      const want = hex(nobleSha256(ml_dsa65.keygen(seed).publicKey));
      for (const suite of PQ_SUITES) {
        const r = await client(s, addr, suite, 'chacha20-poly1305', { crypto: 'node', records: 3, refresh: 1, mutual: true, clientSeed: seed });
        assert.ok(r.ok, `${suite}: ${r.err} ${r.msg}`);
        const op = await ops.forCr(r.cr);
        assert.ok(op.ok);
        if (SUITE_INFO[suite].clientDsa === 65) assert.equal(op.clientKey, want);
      }
    });
  });

  test('pins: SHA-256 of the raw ML-DSA key per level; the hybrid uses the P-256 key', () => {
    const s = new HandshakeServer({ keys: KEYS });
    for (const [suite, lvl] of [['mlkem512-mldsa44', 44], ['mlkem768-mldsa65', 65], ['mlkem1024-mldsa87', 87]] as const) {
      assert.equal(s.pin(suite), hex(nobleSha256(NOBLE_DSA[lvl].keygen(KEYS.mldsa[lvl]).publicKey)));
    }
    assert.equal(s.pin('x25519mlkem768'), s.pin('x25519'));
    assert.equal(new Set(PQ_SUITES.map((x) => s.pin(x))).size, 4);
  });

  test('spec conformance: shares, signatures, ClientAuth, transcript and Finished recomputed independently', async () => {
    const zs: { name: string; z: Buffer }[] = [];
    setSecretTap((name, b) => {
      if (name.startsWith('Z(')) zs.push({ name, z: Buffer.from(b) });
    });
    try {
      await withServer(undefined, async (s, addr, ops) => {
        for (const suite of PQ_SUITES) {
          for (const mutual of [false, true]) {
            zs.length = 0;
            const proxy = await startProxy(addr.port);
            const r = await runClient({
              host: '127.0.0.1', port: proxy.port, suite, aead: 'aes-256-gcm', pin: s.pin(suite), records: 1, mutual,
            });
            assert.ok(r.ok, `${suite}: ${r.err} ${r.msg}`);
            assert.ok((await ops.forCr(r.cr)).ok);
            await proxy.close();
            const zc = zs.find((z) => z.name === 'Z(client)')!.z;
            const zsrv = zs.find((z) => z.name === 'Z(server)')!.z;
            assert.equal(hex(zc), hex(zsrv));
            assert.equal(zc.length, suite === 'x25519mlkem768' ? 64 : 32);

            const c2s = proxy.log.filter((l) => l.dir === 'c2s').map((l) => l.frame);
            const s2c = proxy.log.filter((l) => l.dir === 's2c').map((l) => l.frame);
            const [ch, ...rest] = c2s;
            const ca = mutual ? rest.shift()! : undefined;
            const cfin = rest.shift()!;
            const [sh, sfin] = s2c;
            assert.equal(ch!.type, MSG.ClientHello);
            assert.equal(cfin.type, MSG.Finished);
            if (ca) assert.equal(ca.type, MSG.ClientAuth);
            const chm = decodeClientHello(ch!.body);
            assert.equal(chm.suite, SUITE_IDS[suite]);
            assert.equal(chm.flags, mutual ? CH_FLAG_MUTUAL : 0);
            assert.equal(ch!.body.length, 7 + 32 + 2 + SIZES[suite][0] + (mutual ? 1 : 0));
            if (mutual) assert.equal(ch!.body[ch!.body.length - 1], 0x01, 'flags byte last');
            const shm = decodeServerHello(sh!.body);
            assert.equal(hex(nobleSha256(shm.cert)), s.pin(suite));
            assert.equal(shm.share.length, SIZES[suite][1]);

            const signed = cat(te('QSHS1 server signature'), Uint8Array.of(0), nobleSha256(ch!.raw), shm.serverRandom, shm.share);
            const info = SUITE_INFO[suite];
            if (info.auth === 'mldsa') {
              assert.ok(NOBLE_DSA[info.dsa!].verify(shm.sig, signed, shm.cert, { context: CTX }), 'ML-DSA server signature with ctx QSHS1');
              assert.ok(!NOBLE_DSA[info.dsa!].verify(shm.sig, signed, shm.cert), 'not verifiable without the context');
            } else {
              assert.ok(p256.verify(shm.sig, signed, shm.cert.subarray(26), { format: 'der', lowS: false }), 'ECDSA signature');
            }
            if (ca) {
              const cam = decodeClientAuth(ca.body);
              const lvl = info.clientDsa!;
              assert.equal(cam.pk.length, SIZES[suite][4]);
              assert.equal(cam.sig.length, SIZES[suite][5]);
              const clientSigned = cat(te('QSHS1 client signature'), Uint8Array.of(0), nobleSha256(cat(ch!.raw, sh!.raw)));
              assert.ok(NOBLE_DSA[lvl].verify(cam.sig, clientSigned, cam.pk, { context: CTX }), 'ClientAuth signature');
              assert.equal(hex(nobleSha256(cam.pk)), r.clientKey);
            }
            const pre = [ch!.raw, sh!.raw, ...(ca ? [ca.raw] : [])];
            const th = nobleSha256(cat(...pre));
            const prk = nobleExtract(nobleSha256, zc, cat(chm.clientRandom, shm.serverRandom));
            const master = nExpand(prk, cat(te('QSHS1 master'), th), 32);
            assert.equal(hex(cfin.body), hex(nobleHmac(nobleSha256, nExpand(master, te('QSHS1 c fin'), 32), th)), 'client Finished');
            const th2 = nobleSha256(cat(...pre, cfin.raw));
            assert.equal(hex(sfin!.body), hex(nobleHmac(nobleSha256, nExpand(master, te('QSHS1 s fin'), 32), th2)), 'server Finished');
          }
        }
      });
    } finally {
      setSecretTap(undefined);
    }
  });

  test('argument checks: mutual needs a PQ suite, a client seed is 32 bytes', async () => {
    await withServer(undefined, async (s, addr) => {
      const r1 = await runClient({ ...addr, suite: 'x25519', aead: 'aes-256-gcm', pin: s.pin('x25519'), mutual: true });
      assert.equal(r1.err, 'E_ARGS');
      assert.match(r1.msg!, /mutual/);
      const r2 = await client(s, addr, 'mlkem768-mldsa65', 'aes-256-gcm', { mutual: true, clientSeed: new Uint8Array(31) });
      assert.equal(r2.err, 'E_ARGS');
    });
  });

  test('pin mismatch → E_AUTH before any key is used', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      for (const suite of PQ_SUITES) {
        const wrong = suite === 'mlkem768-mldsa65' ? s.pin('mlkem512-mldsa44') : s.pin('mlkem768-mldsa65');
        const r = await client(s, addr, suite, 'aes-256-gcm', { pin: wrong, mutual: true });
        assert.equal(r.err, 'E_AUTH', `${suite}: ${r.err} ${r.msg}`);
        assert.match(r.msg!, /pin/);
        assert.equal(r.t.decap, undefined, 'no decapsulation before the pin checked');
        assert.equal(r.t.sign, undefined);
        const op = await ops.forCr(r.cr);
        assert.equal(op.err, 'peer_alert:handshake_failure');
      }
    });
  });
});

describe('post-quantum suites: server faults and a bad client', () => {
  const cases: { fault: Fault; records: number; err: string; msg: RegExp; serverErr: string }[] = [
    { fault: 'bad-sig', records: 1, err: 'E_AUTH', msg: /signature/, serverErr: 'peer_alert:handshake_failure' },
    { fault: 'bad-finished', records: 1, err: 'E_AUTH', msg: /Finished/, serverErr: 'peer_alert:handshake_failure' },
    { fault: 'wrong-key', records: 1, err: 'E_AUTH', msg: /pin/, serverErr: 'peer_alert:handshake_failure' },
    { fault: 'tamper', records: 2, err: 'E_RECORD', msg: /authentication/, serverErr: 'peer_alert:bad_record_mac' },
    { fault: 'replay', records: 3, err: 'E_REPLAY', msg: /replay/, serverErr: 'peer_alert:replay' },
  ];
  for (const c of cases) {
    test(`fault ${c.fault} → client ${c.err} (every PQ suite, mutual on/off)`, async () => {
      await withServer({ fault: c.fault }, async (s, addr, ops) => {
        for (const suite of PQ_SUITES) {
          for (const mutual of [false, true]) {
            const r = await client(s, addr, suite, 'chacha20-poly1305', { records: c.records, refresh: 1, mutual });
            assert.equal(r.ok, false, `${suite}: should fail`);
            assert.equal(r.err, c.err, `${suite}/mutual=${mutual}: ${r.err} ${r.msg}`);
            assert.match(r.msg!, c.msg);
            const op = await ops.forCr(r.cr);
            assert.equal(op.err, c.serverErr, `${suite}: server ${op.err} ${op.msg}`);
          }
        }
      });
    });
  }

  test('a bad client signature is rejected by the server (handshake_failure; no client key reported)', async () => {
    await withServer(undefined, async (s, addr, ops) => {
      for (const suite of PQ_SUITES) {
        const r = await client(s, addr, suite, 'aes-256-gcm', { mutual: true, clientFault: 'bad-client-sig', records: 2 });
        assert.equal(r.err, 'E_ALERT', `${suite}: ${r.err} ${r.msg}`);
        assert.match(r.msg!, /handshake_failure/);
        const op = await ops.forCr(r.cr);
        assert.equal(op.ok, false);
        assert.equal(op.err, 'handshake_failure');
        assert.match(op.msg!, /client signature/);
        assert.equal(op.mutual, true);
        assert.equal(op.clientKey, undefined);
        assert.equal(op.hsUs, undefined);
      }
    });
  });
});

describe('post-quantum suites: server robustness', () => {
  test('flags, shares and ClientAuth misuse get the right alerts', async () => {
    await withServer(undefined, async (_s, addr, ops) => {
      let n = 0;
      const next = (): Promise<ServerOp> => ops.nth(n++);
      const ek768 = (): Buffer => Buffer.from(ml_kem768.keygen().publicKey);
      const ch = (o: Partial<Parameters<typeof encodeClientHello>[0]>): Buffer => encodeClientHello({
        version: 1, suite: SUITE_IDS['mlkem768-mldsa65'], aead: 1, refresh: 0, clientRandom: randomBytes(32), share: ek768(), ...o,
      });
      const expectOnly = async (m: Buffer, code: number, err: string): Promise<void> => {
        const frames = await rawSession(addr.port, [m]);
        assert.deepEqual(frames.map((f) => f.type), [MSG.Alert], err);
        assert.equal(decodeAlert(frames[0]!.body).code, code);
        assert.equal((await next()).err, err);
      };
      // mutual with a classical suite; unknown flag bits; a zero flags byte; two trailing bytes
      const xs = Buffer.from(x25519.getPublicKey(x25519.utils.randomSecretKey()));
      await expectOnly(ch({ suite: SUITE_IDS.x25519, share: xs, flags: CH_FLAG_MUTUAL }), ALERT.unsupported, 'unsupported');
      await expectOnly(ch({ flags: 0x02 }), ALERT.unsupported, 'unsupported');
      const base = ch({});
      const withByte = (bytes: number[]): Buffer => {
        const body = Buffer.concat([base.subarray(4), Buffer.from(bytes)]);
        const h = Buffer.alloc(4);
        h[0] = MSG.ClientHello;
        h.writeUIntBE(body.length, 1, 3);
        return Buffer.concat([h, body]);
      };
      await expectOnly(withByte([0]), ALERT.decode_error, 'decode_error');
      await expectOnly(withByte([1, 1]), ALERT.decode_error, 'decode_error');
      // wrong share lengths
      await expectOnly(ch({ share: ek768().subarray(1) }), ALERT.decode_error, 'decode_error');
      await expectOnly(ch({ suite: SUITE_IDS.x25519mlkem768, share: ek768() }), ALERT.decode_error, 'decode_error');
      // an ML-KEM ek that fails the modulus check (coefficients ≥ q): handshake_failure instead of a ServerHello
      await expectOnly(ch({ share: Buffer.alloc(1184, 0xff) }), ALERT.handshake_failure, 'handshake_failure');
      const hs = hybridShare();
      hs.share.fill(0xff, 0, 1184);
      await expectOnly(ch({ suite: SUITE_IDS.x25519mlkem768, share: hs.share }), ALERT.handshake_failure, 'handshake_failure');

      // mutual, but a Finished arrives where the ClientAuth is due → decode_error
      const f1 = await rawSession(addr.port, [ch({ flags: CH_FLAG_MUTUAL })], (f, sock) => {
        if (f.type === MSG.ServerHello) sock.write(encodeFinished(Buffer.alloc(32)));
      });
      assert.deepEqual(f1.map((f) => f.type), [MSG.ServerHello, MSG.Alert]);
      assert.equal(decodeAlert(f1[1]!.body).code, ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');
      // not mutual, but a ClientAuth arrives → decode_error
      const kp = ml_dsa65.keygen(randomBytes(32));
      const f2 = await rawSession(addr.port, [ch({})], (f, sock) => {
        if (f.type === MSG.ServerHello) sock.write(encodeClientAuth({ pk: kp.publicKey, sig: new Uint8Array(3309) }));
      });
      assert.deepEqual(f2.map((f) => f.type), [MSG.ServerHello, MSG.Alert]);
      assert.equal(decodeAlert(f2[1]!.body).code, ALERT.decode_error);
      assert.equal((await next()).err, 'decode_error');
      // mutual, ClientAuth with a key of the wrong level → decode_error; a garbage signature → handshake_failure
      const k44 = ml_dsa44.keygen(randomBytes(32));
      for (const [pk, sig, code, err] of [
        [k44.publicKey, new Uint8Array(3309), ALERT.decode_error, 'decode_error'],
        [kp.publicKey, new Uint8Array(3308), ALERT.decode_error, 'decode_error'],
        [kp.publicKey, new Uint8Array(3309), ALERT.handshake_failure, 'handshake_failure'],
      ] as const) {
        const f3 = await rawSession(addr.port, [ch({ flags: CH_FLAG_MUTUAL })], (f, sock) => {
          if (f.type === MSG.ServerHello) sock.write(encodeClientAuth({ pk, sig }));
        });
        assert.deepEqual(f3.map((f) => f.type), [MSG.ServerHello, MSG.Alert]);
        assert.equal(decodeAlert(f3[1]!.body).code, code);
        const op = await next();
        assert.equal(op.err, err);
        assert.equal(op.mutual, true);
      }
      // the server still works
      for (const suite of PQ_SUITES) {
        const r = await runClient({ ...addr, suite, aead: 'aes-256-gcm', pin: _s.pin(suite), records: 1, mutual: true });
        assert.ok(r.ok, `${suite}: ${r.err} ${r.msg}`);
      }
    });
  });
});

describe('post-quantum suites: secrets', () => {
  test('no session secret appears in ops, results or messages; all are wiped', async () => {
    const tapped: { name: string; value: Buffer; live: Buffer }[] = [];
    setSecretTap((name, live) => tapped.push({ name, value: Buffer.from(live), live }));
    const texts: string[] = [];
    try {
      for (const suite of PQ_SUITES) {
        for (const [fault, mutual] of [[undefined, false], [undefined, true], ['bad-finished', true], ['tamper', false]] as const) {
          await withServer({ fault }, async (s, addr, ops) => {
            const r = await client(s, addr, suite, 'aes-256-gcm', { records: 3, refresh: 1, mutual });
            const op = await ops.forCr(r.cr);
            texts.push(JSON.stringify(r), JSON.stringify(op), r.msg ?? '', op.msg ?? '');
          });
        }
      }
    } finally {
      setSecretTap(undefined);
    }
    const names = new Set(tapped.map((t) => t.name));
    for (const n of ['Z', 'Z(client)', 'Z(server)', 'PRK', 'master', 'c_fin', 's_fin', 'c2s_0', 's2c_0', 'key', 'iv', 'secret']) {
      assert.ok(names.has(n), `tap saw ${n}`);
    }
    const haystack = texts.join('\n').toLowerCase();
    for (const t of tapped) {
      assert.ok(t.value.some((b) => b !== 0), `${t.name} was non-zero when derived`);
      assert.ok(!haystack.includes(t.value.toString('hex').slice(0, 16)), `${t.name} leaked`);
      assert.ok(t.live.every((b) => b === 0), `${t.name} was not wiped`);
    }
  });
});

describe('post-quantum server keys', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qslab-hs-pq-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('ML-DSA seeds are saved as PKCS#8 (RFC 9881 seed form), private, and load back to the same pins', () => {
    saveServerKeys(dir, KEYS);
    for (const l of [44, 65, 87] as const) {
      const f = join(dir, mldsaKeyFile(l));
      assert.equal(statSync(f).mode & 0o077, 0);
      const pem = readFileSync(f, 'utf8');
      const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
      const oid = { 44: '11', 65: '12', 87: '13' }[l];
      assert.equal(der.subarray(0, 22).toString('hex'), `3034020100300b06096086480165030403${oid}04228020`);
      assert.equal(hex(der.subarray(22)), hex(KEYS.mldsa[l]));
      assert.equal(hex(mldsaSeedFromPem(l, mldsaSeedToPem(l, KEYS.mldsa[l]))), hex(KEYS.mldsa[l]));
      assert.throws(() => mldsaSeedFromPem(l === 44 ? 65 : 44, pem), /seed form/);
    }
    const loaded = loadServerKeys(dir);
    const a = new HandshakeServer({ keys: KEYS });
    const b = new HandshakeServer({ keys: loaded });
    for (const suite of PQ_SUITES) assert.equal(a.pin(suite), b.pin(suite));
    assert.throws(() => new HandshakeServer({ keys: { ...KEYS, mldsa: { ...KEYS.mldsa, 65: new Uint8Array(31) } } }), /mldsa\[65\]/);
  });

  test('a key directory from before the PQ suites keeps its keys and gets ML-DSA keys added', () => {
    const old = join(dir, 'old');
    saveServerKeys(old, KEYS);
    for (const l of [44, 65, 87] as const) unlinkSync(join(old, mldsaKeyFile(l)));
    assert.throws(() => loadServerKeys(old), /mldsa44/);
    const k = loadOrCreateServerKeys(old);
    for (const l of [44, 65, 87] as const) assert.ok(existsSync(join(old, mldsaKeyFile(l))));
    const a = new HandshakeServer({ keys: KEYS });
    const b = new HandshakeServer({ keys: k });
    assert.equal(a.pin('rsa2048'), b.pin('rsa2048'));
    assert.equal(a.pin('x25519mlkem768'), b.pin('x25519mlkem768'));
    assert.notEqual(a.pin('mlkem768-mldsa65'), b.pin('mlkem768-mldsa65'));
    assert.equal(new HandshakeServer({ keys: loadOrCreateServerKeys(old) }).pin('mlkem768-mldsa65'), b.pin('mlkem768-mldsa65'));
  });
});
