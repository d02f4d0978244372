// Controller ↔ firmware interop for the post-quantum suites (firmware/HANDSHAKE.md §10): the real POSIX firmware
// (its own ML-KEM / ML-DSA in firmware/core/pqc) on a real pty, the real handshake server (@noble/post-quantum)
// on TCP.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { LinkError } from '../drivers/node.js';
import { generateServerKeys, type ServerKeys } from '../handshake/server.js';
import type { JsonObject } from '../link/frame.js';
import { AEADS } from '../config/campaign.js';
import { PQ_SUITES } from '../handshake/wire.js';
import { withNode, withServer, burst } from './harness.js';
import { DEFAULT_TARGET, SIZES, pqInteropCases } from './interop-cases.js';

let keys: ServerKeys;
before(() => {
  keys = generateServerKeys();
});





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

// Every PQ suite × AEAD (handshake, records, key refresh) and the PQ server faults: shared with
// interop-mbedtls.test.ts, see interop-cases.ts.
pqInteropCases(DEFAULT_TARGET);

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
