// Interop cases shared by the test files that run them against a node build: interop.test.ts and
// interop-pq.test.ts (the default POSIX build, OpenSSL crypto port) and interop-mbedtls.test.ts (the same core
// with the mbedTLS crypto port). Each function registers its tests with node:test when called.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeLink } from '../drivers/node.js';
import { createHash } from 'node:crypto';
import { generateServerKeys, type Fault, type ServerKeys } from '../handshake/server.js';
import { AEADS } from '../config/campaign.js';
import { CLASSICAL_SUITES, MSG, PQ_SUITES, QKD_SUITES, type PqSuiteName } from '../handshake/wire.js';
import { provisionNode, QkdKeyPairSource, type QkdKey } from '../handshake/qkd.js';
import type { JsonObject } from '../link/frame.js';
import { LinkError } from '../drivers/node.js';
import { withNode, withServer, burst, startProxy, type NodeHandle } from './harness.js';

/** Which node firmware the cases run against. */
export interface NodeTarget {
  /** Appended to every test name ('' for the default build). */
  tag: string;
  /** Node binary (default: paths.ts NODE_BINARY). */
  binary?: string;
  /** False when the build is not available: the test has been skipped (or, under CI, failed) by then. */
  ready(tc: TestContext): boolean;
}

export const DEFAULT_TARGET: NodeTarget = { tag: '', ready: () => true };

let serverKeys: ServerKeys | undefined;
/** The handshake server's keys, generated once per test file on first use. */
function keys(): ServerKeys {
  serverKeys ??= generateServerKeys();
  return serverKeys;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

/** §10.4: exact node byte counts (ECDSA signatures vary: the hybrid's hs_rx is a range). */
export const SIZES: Record<PqSuiteName, { tx: number; txMutual: number; rx: [number, number] }> = {
  'mlkem512-mldsa44': { tx: 881, txMutual: 4622, rx: [4578, 4578] },
  'mlkem768-mldsa65': { tx: 1265, txMutual: 6535, rx: [6427, 6427] },
  'mlkem1024-mldsa87': { tx: 1649, txMutual: 8877, rx: [8865, 8865] },
  'x25519mlkem768': { tx: 1297, txMutual: 6567, rx: [1355, 1361] },
};

function nodeOf(target: NodeTarget) {
  return <T>(name: string, fn: (link: NodeLink, h: NodeHandle) => Promise<T>): Promise<T> =>
    withNode(name, fn, target.binary ? { binary: target.binary } : {});
}

/** Every classical suite × AEAD (handshake, records, key refresh), the server faults, a wrong pin. */
export function classicalInteropCases(target: NodeTarget): void {
  const node = nodeOf(target);
  for (const suite of CLASSICAL_SUITES) {
    for (const aead of AEADS) {
      test(`${suite} + ${aead}: node handshakes and records interoperate with the controller${target.tag}`, async (tc) => {
        if (!target.ready(tc)) return;
        await withServer({ keys: keys() }, (srv, port, sops) =>
          node(`interop-${suite}-${aead}`.slice(0, 40), async (link) => {
            const { res, events } = await burst(link, port, srv.pin(suite), { suite, aead });
            assert.equal(res.done, 3);
            assert.equal(res.failed, 0);
            const ops = events.filter((e) => e.ev === 'op');
            assert.equal(ops.length, 3);
            for (const op of ops) {
              assert.equal(op.ok, true, JSON.stringify(op));
              const t = op.t as Record<string, number>;
              for (const k of ['connect', 'keygen', 'kdf', 'hs', 'rec', 'total']) assert.ok(t[k]! >= 0, `${k} missing in ${JSON.stringify(t)}`);
              assert.ok(t.hs! > 0 && t.total! >= t.hs!);
              assert.ok(suite === 'rsa2048' ? t.encap! > 0 : t.dh! > 0);
              assert.equal(op.recs, 5);
              assert.ok((op.hs_tx as number) > 0 && (op.hs_rx as number) > 0);
              // 5 records of 100 B + 4 B frame + 26 B header/tag, and the close_notify alert
              assert.ok((op.rec_tx as number) >= 5 * 130 && (op.rec_rx as number) >= 5 * 130);
              assert.ok((op.heap as number) > 0, 'heap peak measured');
              assert.ok((op.stack as number) > 0, 'stack high-water measured');
            }
            // The server saw the same connections (joined by client_random prefix).
            await new Promise((r) => setTimeout(r, 50));
            const crs = new Set(sops.filter((o) => o.ok).map((o) => o.cr));
            for (const op of ops) assert.ok(crs.has(op.cr as string), `server did not see ${String(op.cr)}`);
            const sizes = ops.map((o) => o.hs_tx);
            const expectRsa = suite === 'rsa2048';
            // rsa2048 sends a 256-byte OAEP ciphertext; ECDHE 65-byte points; x25519 32-byte shares.
            assert.ok(expectRsa ? (sizes[0] as number) > 300 : (sizes[0] as number) < 300, `hs_tx ${String(sizes[0])}`);
          }),
        );
      });
    }
  }

  const faults: [Fault, string, string][] = [
    ['tamper', 'x25519', 'E_RECORD'],
    ['replay', 'ecdhe-p256-ecdsa', 'E_REPLAY'],
    ['bad-sig', 'x25519', 'E_AUTH'],
    ['bad-finished', 'rsa2048', 'E_AUTH'],
    ['wrong-key', 'ecdhe-p256-ecdsa', 'E_AUTH'],
  ];
  for (const [fault, suite, code] of faults) {
    test(`node detects a server fault "${fault}" (${suite}) as ${code}${target.tag}`, async (tc) => {
      if (!target.ready(tc)) return;
      await withServer({ keys: keys(), fault }, (srv, port) =>
        node(`interop-fault-${fault}`, async (link) => {
          const { res, events } = await burst(link, port, srv.pin(suite), { suite, n: 2 });
          assert.equal(res.failed, 2);
          for (const op of events) {
            assert.equal(op.ok, false);
            assert.equal(op.err, code, JSON.stringify(op));
          }
        }),
      );
    });
  }

  test(`a wrong pin fails authentication before any key is used${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await withServer({ keys: keys() }, (_srv, port) =>
      node('interop-pin', async (link) => {
        const { res, events } = await burst(link, port, 'ab'.repeat(32), { suite: 'x25519', n: 1 });
        assert.equal(res.failed, 1);
        assert.equal(events[0]!.err, 'E_AUTH');
      }),
    );
  });
}

/** Every post-quantum suite × AEAD (handshake, records, key refresh) and the server faults on the PQ suites. */
export function pqInteropCases(target: NodeTarget): void {
  const node = nodeOf(target);
  for (const suite of PQ_SUITES) {
    for (const aead of AEADS) {
      test(`${suite} + ${aead}: node handshakes, records and key refresh interoperate${target.tag}`, async (tc) => {
        if (!target.ready(tc)) return;
        await withServer({ keys: keys() }, (srv, port, sops) =>
          node(`ipq-${suite}-${aead}`.slice(0, 40), async (link) => {
            const { res, events: ops } = await burst(link, port, srv.pin(suite), { suite, aead });
            assert.equal(res.done, 3, JSON.stringify(ops[0]));
            assert.equal(res.failed, 0);
            assert.equal(ops.length, 3);
            const hybrid = suite === 'x25519mlkem768';
            for (const op of ops) {
              assert.equal(op.ok, true, JSON.stringify(op));
              const t = op.t as Record<string, number>;
              const want = ['connect', 'keygen', 'decap', ...(hybrid ? ['dh'] : []), 'verify', 'kdf', 'fin', 'hs', 'rec', 'total'];
              assert.deepEqual(Object.keys(t), want, 'step names, in the documented order');
              for (const k of want) assert.ok(t[k]! >= 0, `${k} in ${JSON.stringify(t)}`);
              assert.ok(t.keygen! > 0 && t.decap! > 0 && t.verify! > 0);
              assert.ok(t.total! >= t.hs! && t.hs! >= t.keygen! + t.decap! + t.verify!);
              assert.equal(op.recs, 5);
              assert.equal(op.hs_tx, SIZES[suite].tx, 'hs_tx = ClientHello + Finished (§10.4)');
              const rx = op.hs_rx as number;
              assert.ok(rx >= SIZES[suite].rx[0] && rx <= SIZES[suite].rx[1], `hs_rx ${rx}`);
              assert.equal(op.rec_tx, 5 * 130);
              assert.equal(op.rec_rx, 5 * 130);
              assert.equal(op.ck, undefined, 'no client key without mutual');
              assert.ok((op.stack as number) > 0 && (op.stack as number) <= 64 * 1024, `stack ${String(op.stack)}`);
              assert.ok((op.heap as number) > 0);
            }
            if (suite === 'mlkem768-mldsa65') {
              // the figures the brief asks for: ek out, ct + ML-DSA-65 sig + pk in
              assert.ok((ops[0]!.hs_tx as number) >= 1184);
              assert.ok((ops[0]!.hs_rx as number) >= 1088 + 3309 + 1952);
            }
            await settle();
            for (const op of ops) {
              const s = sops.find((o) => o.cr === op.cr);
              assert.ok(s && s.ok, `server did not see ${String(op.cr)} succeed`);
              assert.equal(s.suite, suite);
              assert.equal(s.mutual, false);
              assert.equal(s.bytesIn, (op.hs_tx as number) + (op.rec_tx as number) + 5);
              assert.equal(s.bytesOut, (op.hs_rx as number) + (op.rec_rx as number));
            }
          }),
        );
      });
    }
  }

  const faults: [Fault, PqSuiteName, boolean, string][] = [
    ['bad-sig', 'mlkem512-mldsa44', false, 'E_AUTH'],
    ['bad-sig', 'mlkem768-mldsa65', true, 'E_AUTH'],
    ['bad-sig', 'mlkem1024-mldsa87', false, 'E_AUTH'],
    ['bad-sig', 'x25519mlkem768', true, 'E_AUTH'],
    ['bad-finished', 'mlkem768-mldsa65', false, 'E_AUTH'],
    ['bad-finished', 'x25519mlkem768', true, 'E_AUTH'],
    ['wrong-key', 'mlkem1024-mldsa87', true, 'E_AUTH'],
    ['wrong-key', 'x25519mlkem768', false, 'E_AUTH'],
    ['tamper', 'mlkem512-mldsa44', true, 'E_RECORD'],
    ['tamper', 'x25519mlkem768', false, 'E_RECORD'],
    ['replay', 'mlkem768-mldsa65', false, 'E_REPLAY'],
    ['replay', 'mlkem1024-mldsa87', true, 'E_REPLAY'],
  ];
  test(`node detects server faults on the PQ suites (bad-sig, bad-finished, wrong-key, tamper, replay)${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await node('ipq-faults', async (link) => {
      for (const [fault, suite, mutual, code] of faults) {
        await withServer({ keys: keys(), ...(fault ? { fault } : {}) }, async (srv, port, sops) => {
          const { res, events } = await burst(link, port, srv.pin(suite), { suite, n: 2, mutual });
          const what = `${fault}/${suite}/mutual=${mutual}`;
          assert.equal(res.failed, 2, what);
          for (const op of events) {
            assert.equal(op.ok, false, what);
            assert.equal(op.err, code, `${what}: ${JSON.stringify(op)}`);
          }
          if (fault === 'bad-sig') assert.match(events[0]!.msg as string, /signature/);
          if (fault === 'bad-finished') assert.match(events[0]!.msg as string, /Finished/);
          if (fault === 'wrong-key') {
            assert.match(events[0]!.msg as string, /pin/);
            assert.equal((events[0]!.t as Record<string, number>).decap, undefined, 'pin checked before decapsulation');
          }
          await settle();
          const alerts = { E_AUTH: 'peer_alert:handshake_failure', E_RECORD: 'peer_alert:bad_record_mac', E_REPLAY: 'peer_alert:replay' };
          for (const op of events) assert.equal(sops.find((o) => o.cr === op.cr)?.err, alerts[code as keyof typeof alerts], what);
        });
      }
    });
  });
}

const count = async (link: NodeLink): Promise<number> => (await link.request('qkd', { op: 'count' })).count as number;
const hexOf = (ks: QkdKey[]): string[] => ks.map((k) => k.key.toString('hex'));

/** Both QKD suites × both AEADs: keys provisioned over serial, the same key_IDs on both ends, with key refresh. */
export function qkdInteropCases(target: NodeTarget): void {
  const node = nodeOf(target);
  test(`both QKD suites × both AEADs: node and server use the same key_IDs, each once, with key refresh${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    const pool = new QkdKeyPairSource();
    const ks = pool.generate(120);
    await withServer({ keys: keys(), qkd: pool.master }, (srv, port, sops) =>
      node('iqkd-run', async (link, { lines }) => {
        await provisionNode(link, ks);
        const events: JsonObject[] = [];
        for (const suite of QKD_SUITES) {
          for (const aead of AEADS) {
            const { res, events: ops } = await burst(link, port, srv.pin(suite), { suite, aead, records: 7 });
            assert.equal(res.done, 3, JSON.stringify(ops[0]));
            for (const op of ops) {
              assert.equal(op.ok, true, JSON.stringify(op));
              const t = op.t as Record<string, number>;
              const hybrid = suite === 'qkd-x25519mlkem768';
              assert.deepEqual(Object.keys(t), ['connect', 'keygen', 'decap', ...(hybrid ? ['dh'] : []), 'verify', 'qkd', 'kdf', 'fin', 'hs', 'rec', 'total']);
              assert.ok(t.qkd! > 0);
              assert.equal(op.recs, 7);
              assert.equal(op.qkd_n, 4, '1 handshake key + ⌊(7−1)/2⌋ = 3 epoch keys');
              assert.equal(op.hs_tx, hybrid ? 1298 : 1266);
              if (!hybrid) assert.equal(op.hs_rx, 6445 + 16 * 3);
              assert.ok((op.stack as number) <= 64 * 1024);
            }
            events.push(...ops);
          }
        }
        await settle();
        const used = new Set<string>();
        for (const op of events) {
          const s = sops.find((o) => o.cr === op.cr)!;
          assert.ok(s.ok, `${s.err} ${s.msg}`);
          assert.equal(s.qkdKeyIds[0], op.qkd_id);
          assert.equal(s.qkdKeyIds.length, op.qkd_n);
          for (const id of s.qkdKeyIds) {
            assert.ok(!used.has(id), `key_ID ${id} used twice`);
            used.add(id);
          }
          assert.equal(s.bytesIn, (op.hs_tx as number) + (op.rec_tx as number) + 5);
        }
        assert.equal(used.size, 12 * 4);
        assert.equal(await count(link), 120 - 48, 'the node wiped every key it used');
        const all = hexOf(ks);
        for (const e of events) { const j = JSON.stringify(e); for (const h of all) assert.ok(!j.includes(h), 'key bytes in an op event'); }
        for (const l of lines) for (const h of all) assert.ok(!l.toLowerCase().includes(h), 'key bytes on the console');
      }),
    );
  });
}

/** The node's record plaintext (qshs.c): record i of an operation, byte j = (i · 131 + j) mod 256. */
export function nodePattern(i: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let j = 0; j < bytes; j++) b[j] = (i * 131 + j) & 0xff;
  return b;
}

/** The record header of §6 / §12: epoch(2) | seq(8). */
function recordHeader(epoch: number, seq: number): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt16BE(epoch, 0);
  h.writeBigUInt64BE(BigInt(seq), 2);
  return h;
}

/**
 * The plaintext baseline `none` (HANDSHAKE.md §12) on a real node: records in the clear (seen by a proxy), the
 * same framing as the AEAD suites minus the 16-byte tag, tampered and replayed echoes, and a server that does not
 * allow plaintext.
 */
export function plaintextInteropCases(target: NodeTarget): void {
  const node = nodeOf(target);
  const emptyPin = createHash('sha256').update(Buffer.alloc(0)).digest('hex');

  test(`none: node bursts succeed with steps connect/hs/rec/total and the AEAD suites' framing minus the tag${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await withServer({ keys: keys(), allowPlaintext: true }, (srv, port, sops) =>
      node('inone-ok', async (link) => {
        assert.equal(srv.pin('none'), emptyPin, 'pin of none = SHA-256 of the empty cert');
        const { res, events: ops } = await burst(link, port, srv.pin('none'), { suite: 'none', n: 3, records: 5, bytes: 100, refresh: 2 });
        assert.equal(res.done, 3, JSON.stringify(ops[0]));
        assert.equal(res.failed, 0);
        assert.equal(ops.length, 3);
        for (const op of ops) {
          assert.equal(op.ok, true, JSON.stringify(op));
          const t = op.t as Record<string, number>;
          assert.deepEqual(Object.keys(t), ['connect', 'hs', 'rec', 'total'], 'no keygen / dh / verify / kdf / fin step');
          assert.ok(t.hs! >= t.connect! && t.rec! > 0 && t.total! >= t.hs! + t.rec! - 1);
          assert.equal(op.recs, 5);
          assert.equal(op.hs_tx, 46, 'ClientHello: 45 + flags byte, no share, no Finished');
          assert.equal(op.hs_rx, 43, 'ServerHello: 4 + 32 + 3 empty vectors + flags byte');
          assert.equal(op.rec_tx, 5 * (4 + 10 + 100), 'frame header + epoch/seq + payload, no tag');
          assert.equal(op.rec_rx, 5 * (4 + 10 + 100));
          assert.equal(op.ck, undefined);
          assert.equal(op.qkd_n, undefined);
        }
        // the same burst with an AEAD suite on the same server: exactly one 16-byte tag more per record each way
        const { events: aeadOps } = await burst(link, port, srv.pin('x25519'), { suite: 'x25519', n: 1, records: 5, bytes: 100, refresh: 2 });
        assert.equal(aeadOps[0]!.ok, true, JSON.stringify(aeadOps[0]));
        assert.equal(aeadOps[0]!.rec_tx, (ops[0]!.rec_tx as number) + 5 * 16);
        assert.equal(aeadOps[0]!.rec_rx, (ops[0]!.rec_rx as number) + 5 * 16);
        // no pin needed for none; the aead argument is ignored (the wire says aead 0)
        const noPin = await link.request('hs', { suite: 'none', host: '127.0.0.1', port, n: 1, records: 2, bytes: 8, aead: 'chacha20-poly1305' }, { idle: true, timeoutMs: 30000 });
        assert.equal(noPin.done, 1);
        await assert.rejects(link.request('hs', { suite: 'none', host: '127.0.0.1', port, n: 1, mutual: true }),
          (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS' && /mutual/.test(e.message));
        await settle();
        for (const op of ops) {
          const so = sops.find((o) => o.cr === op.cr);
          assert.ok(so && so.ok, `server did not see ${String(op.cr)} succeed`);
          assert.equal(so.suite, 'none');
          assert.equal(so.aead, 'none');
          assert.equal(so.recs, 5);
          assert.ok(so.hsUs !== undefined);
          assert.equal(so.bytesIn, (op.hs_tx as number) + (op.rec_tx as number) + 5, '+ close_notify');
          assert.equal(so.bytesOut, (op.hs_rx as number) + (op.rec_rx as number));
        }
      }),
    );
  });

  test(`none: the record payload crosses the wire in the clear, echoed byte for byte${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await withServer({ keys: keys(), allowPlaintext: true }, async (srv, port) => {
      const proxy = await startProxy(port);
      const B = 64;
      try {
        await node('inone-wire', async (link) => {
          const { res } = await burst(link, proxy.port, srv.pin('none'), { suite: 'none', n: 1, records: 3, bytes: B, refresh: 2 });
          assert.equal(res.done, 1);
        });
        await settle();
        const c2s = proxy.log.filter((l) => l.dir === 'c2s').map((l) => l.frame);
        const s2c = proxy.log.filter((l) => l.dir === 's2c').map((l) => l.frame);
        assert.deepEqual(c2s.map((f) => f.type), [MSG.ClientHello, MSG.Record, MSG.Record, MSG.Record, MSG.Alert]);
        assert.deepEqual(s2c.map((f) => f.type), [MSG.ServerHello, MSG.Record, MSG.Record, MSG.Record]);
        // ClientHello: version 1 | suite 10 | aead 0 | refresh 2 | client_random | share_len 0 | flags 0x02 (plaintext)
        const ch = c2s[0]!.body;
        assert.equal(ch.length, 42);
        assert.deepEqual([...ch.subarray(0, 7)], [1, 10, 0, 0, 0, 0, 2]);
        assert.deepEqual([...ch.subarray(39)], [0, 0, 0x02]);
        // ServerHello: server_random | share_len 0 | cert_len 0 | sig_len 0 | flags 0x02 (plaintext)
        const sh = s2c[0]!.body;
        assert.equal(sh.length, 39);
        assert.deepEqual([...sh.subarray(32)], [0, 0, 0, 0, 0, 0, 0x02]);
        const stream = Buffer.concat(c2s.map((f) => f.raw));
        for (let i = 0; i < 3; i++) {
          const want = Buffer.concat([recordHeader(Math.floor(i / 2), i), nodePattern(i, B)]);
          assert.deepEqual(c2s[1 + i]!.body, want, `record ${i}: epoch | seq | the node's plaintext, no tag`);
          assert.ok(stream.includes(nodePattern(i, B)), `record ${i}'s payload is readable in the TCP stream`);
          assert.deepEqual(s2c[1 + i]!.body, want, `echo ${i}: the same bytes back`);
        }
        assert.deepEqual([...c2s[4]!.body], [0], 'close_notify');
      } finally {
        await proxy.close();
      }
    });
  });

  test(`none: a changed echo is E_RECORD (bad_record_mac), a replayed one E_REPLAY${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await withServer({ keys: keys(), allowPlaintext: true }, async (srv, port, sops) => {
      // a man in the middle flips one payload bit of the second echo
      const proxy = await startProxy(port, (dir, f) => {
        if (dir !== 's2c' || f.type !== MSG.Record || f.body.readBigUInt64BE(2) !== 1n) return undefined;
        const raw = Buffer.from(f.raw);
        raw[4 + 10 + 3]! ^= 0x01;
        return [raw];
      });
      try {
        await node('inone-tamper', async (link) => {
          const { res, events } = await burst(link, proxy.port, srv.pin('none'), { suite: 'none', n: 2, records: 4, bytes: 32 });
          assert.equal(res.failed, 2);
          for (const op of events) {
            assert.equal(op.ok, false);
            assert.equal(op.err, 'E_RECORD', JSON.stringify(op));
            assert.match(op.msg as string, /echo of record 1 \(seq 1\) differs from what was sent \(plaintext, no MAC\)/);
            assert.equal(op.recs, 1);
          }
          await settle();
          for (const op of events) assert.equal(sops.find((o) => o.cr === op.cr)?.err, 'peer_alert:bad_record_mac');
        });
      } finally {
        await proxy.close();
      }
    });
    for (const [fault, code, alert] of [['tamper', 'E_RECORD', 'bad_record_mac'], ['replay', 'E_REPLAY', 'replay']] as const) {
      await withServer({ keys: keys(), allowPlaintext: true, fault }, (srv, port, sops) =>
        node(`inone-${fault}`, async (link) => {
          const { res, events } = await burst(link, port, srv.pin('none'), { suite: 'none', n: 1, records: 3, bytes: 16 });
          assert.equal(res.failed, 1, fault);
          assert.equal(events[0]!.err, code, JSON.stringify(events[0]));
          await settle();
          assert.equal(sops.find((o) => o.cr === events[0]!.cr)?.err, `peer_alert:${alert}`);
        }),
      );
    }
  });

  test(`none: a server not started with allowPlaintext refuses it and the node says why${target.tag}`, async (tc) => {
    if (!target.ready(tc)) return;
    await withServer({ keys: keys() }, (srv, port, sops) =>
      node('inone-refused', async (link) => {
        const { res, events } = await burst(link, port, srv.pin('none'), { suite: 'none', n: 2, records: 3, bytes: 16 });
        assert.equal(res.failed, 2);
        for (const op of events) {
          assert.equal(op.ok, false);
          assert.equal(op.err, 'E_ALERT', JSON.stringify(op));
          assert.match(op.msg as string, /unsupported.*plaintext suite none not allowed/);
          assert.equal(op.recs, 0);
          assert.equal(op.rec_tx, 0);
          assert.equal(op.hs_tx, 46);
        }
        await settle();
        for (const op of events) {
          const so = sops.find((o) => o.cr === op.cr)!;
          assert.equal(so.ok, false);
          assert.equal(so.err, 'unsupported');
          assert.equal(so.suite, 'none');
          assert.equal(so.recs, 0);
        }
        // the same server still serves the other suites
        const { events: ok } = await burst(link, port, srv.pin('x25519'), { suite: 'x25519', n: 1 });
        assert.equal(ok[0]!.ok, true);
      }),
    );
  });
}
