// Controller ↔ firmware interop: the real POSIX firmware on a real pty, the real handshake server on TCP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NodeLink, LinkError } from '../drivers/node.js';
import { VirtualNode } from '../virtual/node.js';
import { generateServerKeys, type ServerKeys } from '../handshake/server.js';
import { SUITES } from '../config/campaign.js';
import type { JsonObject } from '../link/frame.js';
import { withNode, withServer, handled } from './harness.js';
import { DEFAULT_TARGET, classicalInteropCases } from './interop-cases.js';


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

// Every classical suite × AEAD (handshake, records, key refresh), the server faults and the wrong pin: shared
// with interop-mbedtls.test.ts (the same cases against the mbedTLS crypto port), see interop-cases.ts.
classicalInteropCases(DEFAULT_TARGET);

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
