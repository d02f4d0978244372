// Controller ↔ firmware interop for the post-quantum suites (firmware/HANDSHAKE.md §10): the real POSIX firmware
// (its own ML-KEM / ML-DSA in firmware/core/pqc) on a real pty, the real handshake server (@noble/post-quantum)
// on TCP.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { LinkError } from '../drivers/node.js';
import { generateServerKeys, type Fault, type ServerKeys } from '../handshake/server.js';
import type { JsonObject } from '../link/frame.js';
import { AEADS } from '../config/campaign.js';
import { PQ_SUITES, type PqSuiteName } from '../handshake/wire.js';
import { withNode, withServer, burst } from './harness.js';

let keys: ServerKeys;
before(() => {
  keys = generateServerKeys();
});

/** §10.4: exact node byte counts (ECDSA signatures vary: the hybrid's hs_rx is a range). */
const SIZES: Record<PqSuiteName, { tx: number; txMutual: number; rx: [number, number] }> = {
  'mlkem512-mldsa44': { tx: 881, txMutual: 4622, rx: [4578, 4578] },
  'mlkem768-mldsa65': { tx: 1265, txMutual: 6535, rx: [6427, 6427] },
  'mlkem1024-mldsa87': { tx: 1649, txMutual: 8877, rx: [8865, 8865] },
  'x25519mlkem768': { tx: 1297, txMutual: 6567, rx: [1355, 1361] },
};




const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('hello lists the post-quantum suites', async () => {
  await withNode('ipq-hello', async (link) => {
    for (const s of PQ_SUITES) assert.ok(link.hello!.suites.includes(s), `node lacks ${s}`);
  });
});

for (const suite of PQ_SUITES) {
  for (const aead of AEADS) {
    test(`${suite} + ${aead}: node handshakes, records and key refresh interoperate`, async () => {
      await withServer({ keys }, (srv, port, sops) =>
        withNode(`ipq-${suite}-${aead}`.slice(0, 40), async (link) => {
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

test('mutual authentication: every PQ suite; one node key per level and boot, reported as ck = the server\'s clientKey', async () => {
  await withServer({ keys }, (srv, port, sops) =>
    withNode('ipq-mutual', async (link) => {
      const byLevel = new Map<string, string>();
      for (const [i, suite] of PQ_SUITES.entries()) {
        const aead = AEADS[i % 2]!;
        const { res, events: ops } = await burst(link, port, srv.pin(suite), { suite, aead, mutual: true });
        assert.equal(res.done, 3, JSON.stringify(ops[0]));
        const hybrid = suite === 'x25519mlkem768';
        for (const op of ops) {
          assert.equal(op.ok, true, JSON.stringify(op));
          const t = op.t as Record<string, number>;
          assert.deepEqual(Object.keys(t), ['connect', 'keygen', 'decap', ...(hybrid ? ['dh'] : []), 'verify', 'sign', 'kdf', 'fin', 'hs', 'rec', 'total']);
          assert.ok(t.sign! > 0);
          assert.equal(op.hs_tx, SIZES[suite].txMutual, 'hs_tx = ClientHello(+flags) + ClientAuth + Finished');
          assert.match(op.ck as string, /^[0-9a-f]{64}$/);
          assert.equal(op.ck, ops[0]!.ck, 'same key for the whole burst');
        }
        await settle();
        for (const op of ops) {
          const s = sops.find((o) => o.cr === op.cr)!;
          assert.ok(s.ok, `${s.err} ${s.msg}`);
          assert.equal(s.mutual, true);
          assert.equal(s.clientKey, op.ck, 'the server verified the node key the node reports');
        }
        const level = suite === 'mlkem512-mldsa44' ? '44' : suite === 'mlkem1024-mldsa87' ? '87' : '65';
        if (byLevel.has(level)) assert.equal(byLevel.get(level), ops[0]!.ck, `ML-DSA-${level} key reused within the boot`);
        byLevel.set(level, ops[0]!.ck as string);
      }
      assert.equal(new Set(byLevel.values()).size, 3);
      // a second burst keeps the key; a reset makes a new one
      const again = await burst(link, port, srv.pin('mlkem768-mldsa65'), { suite: 'mlkem768-mldsa65', mutual: true, n: 1 });
      assert.equal(again.events[0]!.ck, byLevel.get('65'));
      const boot = new Promise<JsonObject>((r) => link.once('boot', r));
      await link.request('reset');
      await boot;
      await link.connect();
      const after = await burst(link, port, srv.pin('mlkem768-mldsa65'), { suite: 'mlkem768-mldsa65', mutual: true, n: 1 });
      assert.equal(after.events[0]!.ok, true);
      assert.notEqual(after.events[0]!.ck, byLevel.get('65'), 'new key after reset');
    }),
  );
});

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
test('node detects server faults on the PQ suites (bad-sig, bad-finished, wrong-key, tamper, replay)', async () => {
  await withNode('ipq-faults', async (link) => {
    for (const [fault, suite, mutual, code] of faults) {
      await withServer({ keys, ...(fault ? { fault } : {}) }, async (srv, port, sops) => {
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

test('a wrong pin fails E_AUTH before the ML-KEM key is used; bad mutual arguments are E_ARGS', async () => {
  await withServer({ keys }, (srv, port) =>
    withNode('ipq-pin', async (link) => {
      for (const suite of PQ_SUITES) {
        const { res, events } = await burst(link, port, 'ab'.repeat(32), { suite, n: 1, mutual: true });
        assert.equal(res.failed, 1);
        assert.equal(events[0]!.err, 'E_AUTH');
        const t = events[0]!.t as Record<string, number>;
        assert.equal(t.decap, undefined);
        assert.equal(t.sign, undefined);
      }
      const bad = (args: Record<string, string | number | boolean>) =>
        assert.rejects(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('x25519'), n: 1, ...args }),
          (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS' && /mutual/.test(e.message));
      await bad({ suite: 'x25519', mutual: true });
      await bad({ suite: 'mlkem768-mldsa65', mutual: 'yes' });
      await bad({ suite: 'rsa2048', mutual: true });
      // mutual: false is accepted with any suite
      const { res } = await burst(link, port, srv.pin('x25519'), { suite: 'x25519', n: 1, mutual: false });
      assert.equal(res.done, 1);
    }),
  );
});

test('node timings per PQ suite (median of 20 handshakes on the virtual node)', async (t) => {
  await withServer({ keys }, (srv, port) =>
    withNode('ipq-timing', async (link) => {
      const rows: string[] = [];
      for (const suite of PQ_SUITES) {
        for (const mutual of [false, true]) {
          const { res, events } = await burst(link, port, srv.pin(suite), { suite, n: 20, records: 0, mutual });
          assert.equal(res.done, 20);
          const med = (k: string): string => {
            const xs = events.map((e) => (e.t as Record<string, number>)[k]).filter((x): x is number => x !== undefined);
            return xs.length ? median(xs).toFixed(0) : '-';
          };
          const stack = Math.max(...events.map((e) => e.stack as number));
          const heap = Math.max(...events.map((e) => e.heap as number));
          rows.push(`${suite.padEnd(18)} mutual=${mutual ? 'y' : 'n'} hs=${med('hs')} keygen=${med('keygen')} decap=${med('decap')} ` +
            `dh=${med('dh')} verify=${med('verify')} sign=${med('sign')} kdf=${med('kdf')} fin=${med('fin')} µs; ` +
            `hs_tx=${String(events[0]!.hs_tx)} hs_rx=${String(events[0]!.hs_rx)} stack≤${stack} heap≤${heap}`);
          assert.ok(stack <= 64 * 1024);
        }
      }
      for (const r of rows) t.diagnostic(r);
    }),
  );
});
