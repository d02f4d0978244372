// Controller ↔ firmware interop: the real POSIX firmware on a real pty, the real handshake server on TCP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NodeLink, LinkError } from '../drivers/node.js';
import { VirtualNode } from '../virtual/node.js';
import { generateServerKeys, type Fault, type ServerKeys } from '../handshake/server.js';
import { SUITES, AEADS } from '../config/campaign.js';
import { CLASSICAL_SUITES } from '../handshake/wire.js';
import type { JsonObject } from '../link/frame.js';
import { withNode, withServer, burst, handled } from './harness.js';


let keys: ServerKeys;
before(() => {
  keys = generateServerKeys();
});




test('hello reports version, build hash, board profile and suites', async () => {
  await withNode('interop-hello', async (link) => {
    const h = link.hello!;
    assert.equal(h.proto, 1);
    assert.match(h.build, /^[0-9a-f]{16}$/);
    assert.equal(h.board, 'esp32');
    assert.equal(h.cpu_mhz, 240);
    assert.equal(h.ram, 532480);
    for (const s of SUITES) assert.ok(h.suites.includes(s), `node lacks ${s}`);
    const ping = await link.request('ping');
    assert.equal(typeof ping.t_us, 'number');
  });
});

// The post-quantum suites have their own file (interop-pq.test.ts).
for (const suite of CLASSICAL_SUITES) {
  for (const aead of AEADS) {
    test(`${suite} + ${aead}: node handshakes and records interoperate with the controller`, async () => {
      await withServer({ keys }, (srv, port, sops) =>
        withNode(`interop-${suite}-${aead}`.slice(0, 40), async (link) => {
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
  test(`node detects a server fault "${fault}" (${suite}) as ${code}`, async () => {
    await withServer({ keys, fault }, (srv, port) =>
      withNode(`interop-fault-${fault}`, async (link) => {
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

test('a wrong pin fails authentication before any key is used', async () => {
  await withServer({ keys }, (_srv, port) =>
    withNode('interop-pin', async (link) => {
      const { res, events } = await burst(link, port, 'ab'.repeat(32), { suite: 'x25519', n: 1 });
      assert.equal(res.failed, 1);
      assert.equal(events[0]!.err, 'E_AUTH');
    }),
  );
});

test('busy, abort, bad arguments and unknown commands are answered with their codes', async () => {
  await withServer({ keys }, (srv, port) =>
    withNode('interop-busy', async (link) => {
      const long = handled(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('x25519'), suite: 'x25519', n: 100000, records: 0, bytes: 16, aead: 'aes-256-gcm', refresh: 0 }, { idle: true, timeoutMs: 10000 }));
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('x25519'), suite: 'x25519', n: 1, records: 0, bytes: 16, aead: 'aes-256-gcm', refresh: 0 }), (e: unknown) => e instanceof LinkError && e.code === 'E_BUSY');
      const info = await link.request('info');
      assert.equal(info.busy, true);
      await link.request('abort');
      await assert.rejects(long, (e: unknown) => e instanceof LinkError && e.code === 'E_ABORTED');
      await assert.rejects(link.request('hs', { suite: 'rsa1024', host: '127.0.0.1', port, n: 1 }), (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
      await assert.rejects(link.request('fly'), (e: unknown) => e instanceof LinkError && e.code === 'E_CMD');
      await assert.rejects(link.request('hello', { pmin: 2, pmax: 3 }), (e: unknown) => e instanceof LinkError && e.code === 'E_PROTO');
    }),
  );
});

test('node console lines and a reset mid-life keep the link usable', async () => {
  await withNode('interop-reset', async (link) => {
    const before = link.stats.console;
    await link.request('log', { n: 5 });
    assert.ok(link.stats.console >= before + 5);
    const boot = new Promise<JsonObject>((r) => link.once('boot', r));
    await link.request('reset');
    const ev = await boot;
    assert.equal(ev.reason, 'reset');
    const h = await link.connect();
    assert.equal(h.proto, 1);
  });
});

test('a killed node closes the link and fails the pending request', async () => {
  await withServer({ keys }, (srv, port) =>
    withNode('interop-kill', async (link, { vn }) => {
      const p = handled(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('x25519'), suite: 'x25519', n: 100000, records: 0, bytes: 16, aead: 'aes-256-gcm', refresh: 0 }, { idle: true, timeoutMs: 5000 }));
      await new Promise((r) => setTimeout(r, 100));
      vn.kill();
      await assert.rejects(p, (e: unknown) => e instanceof LinkError && e.code === 'E_CLOSED');
    }),
  );
});

after(() => undefined);

test('a paced node costs what a real UART does, also after the line was idle', async () => {
  const vn = new VirtualNode({ name: 'interop-paced', board: 'esp32', baud: 9600, pace: true });
  const path = await vn.start();
  const link = new NodeLink({ name: 'interop-paced', path, baud: 9600 });
  await link.open();
  try {
    await link.connect(3, 5000);
    for (const idleMs of [0, 60, 400]) {
      await new Promise((r) => setTimeout(r, idleMs));
      const before = link.console.length;
      const t0 = Date.now();
      await link.request('log', { n: 10 }, { timeoutMs: 10000 });
      const ms = Date.now() - t0;
      const bytes = link.console.slice(before).reduce((a, l) => a + l.length + 1, 0);
      const lineMs = (bytes * 10 * 1000) / 9600; // 10 bits per byte
      assert.ok(ms >= lineMs * 0.9, `after ${idleMs} ms idle: ${bytes} B took ${ms} ms, a 9600-baud line needs ${lineMs.toFixed(0)} ms`);
      assert.ok(ms < lineMs * 1.5 + 200, `pacing too slow: ${ms} ms for ${lineMs.toFixed(0)} ms of line time`);
    }
  } finally {
    await link.close();
    await vn.stop();
  }
});

test('op timings never include serial I/O: a slow (paced) line does not inflate them', async () => {
  await withServer({ keys }, async (srv, port) => {
    const vn = new VirtualNode({ name: 'interop-slowline', board: 'esp32', baud: 9600, pace: true });
    const path = await vn.start();
    const link = new NodeLink({ name: 'interop-slowline', path, baud: 9600 });
    await link.open();
    try {
      await link.connect(3, 5000);
      const arrivals: number[] = [];
      const totals: number[] = [];
      const t0 = Date.now();
      await link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('x25519'), suite: 'x25519', n: 6, records: 2, bytes: 32, aead: 'aes-256-gcm', refresh: 0 }, {
        idle: true, timeoutMs: 15000,
        onEvent: (e) => {
          arrivals.push(Date.now() - t0);
          totals.push((e.t as Record<string, number>).total!);
        },
      });
      // Each ~290-byte event needs ~300 ms of a 9600-baud line; the operations themselves take a few ms.
      assert.ok(arrivals.at(-1)! > 1200, `events arrived too fast for 9600 baud: ${arrivals.join(',')}`);
      for (const t of totals) assert.ok(t < 100_000, `an op took ${t} µs on the node clock: serial time leaked into it`);
    } finally {
      await link.close();
      await vn.stop();
    }
  });
});
