// NodeLink over a real pseudo-terminal, with a scripted node at the far end (pty-peer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NodeLink, LinkError } from '../drivers/node.js';
import { encodeFrame } from '../link/frame.js';
import { seededRandom } from '../campaign/runner.js';
import { PtyPeer } from './peer.js';

/** Marks a promise that a test will assert on later as handled, so an early rejection is not "unhandled". */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

async function pair(): Promise<{ peer: PtyPeer; link: NodeLink }> {
  const peer = new PtyPeer();
  const path = await peer.start();
  const link = new NodeLink({ name: 'peer', path, baud: 115200 });
  await link.open();
  return { peer, link };
}

test('hello negotiation, then request/response with events', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const hello = link.connect();
  await peer.answerHello();
  assert.equal((await hello).build, '0123456789abcdef');

  const events: unknown[] = [];
  const p = link.request('hs', { n: 2 }, { onEvent: (e) => events.push(e.i) });
  const req = await peer.next();
  assert.equal(req.cmd, 'hs');
  await peer.frame({ id: req.id as number, ev: 'op', i: 0, ok: true });
  await peer.raw('I (100) qslab: a log line between events\n');
  await peer.frame({ id: req.id as number, ev: 'op', i: 1, ok: true });
  await peer.frame({ id: req.id as number, ok: true, done: 2 });
  assert.equal((await p).done, 2);
  assert.deepEqual(events, [0, 1]);
  assert.ok(link.console.includes('I (100) qslab: a log line between events'));
});

test('node error codes come back as LinkError', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const p = handled(link.request('nope'));
  const req = await peer.next();
  await peer.frame({ id: req.id as number, ok: false, err: 'E_CMD', msg: 'unknown command' });
  await assert.rejects(p, (e: unknown) => e instanceof LinkError && e.code === 'E_CMD');
});

test('a silent node times out; an idle timeout is refreshed by events', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const t0 = Date.now();
  await assert.rejects(link.request('ping', {}, { timeoutMs: 200 }), (e: unknown) => e instanceof LinkError && e.code === 'E_TIMEOUT');
  assert.ok(Date.now() - t0 >= 190);
  await peer.next(); // drain the ping

  const p = link.request('hs', {}, { timeoutMs: 300, idle: true });
  const req = await peer.next();
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    await peer.frame({ id: req.id as number, ev: 'op', i, ok: true });
  }
  await peer.frame({ id: req.id as number, ok: true });
  await p; // 750 ms in total, never 300 ms without an event
});

test('a node reboot mid-command fails the pending request with E_RESET, and the link goes on', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const p = handled(link.request('hs', {}, { timeoutMs: 5000 }));
  await peer.next();
  await peer.raw('ets Jun  8 2016 00:22:57\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n');
  await peer.frame({ id: 0, ev: 'boot', proto: 1, reason: 'reset' });
  await assert.rejects(p, (e: unknown) => e instanceof LinkError && e.code === 'E_RESET');
  const ping = link.request('ping');
  const req = await peer.next();
  await peer.frame({ id: req.id as number, ok: true, t_us: 5 });
  assert.equal((await ping).t_us, 5);
});

test('the pty closing fails pending requests with E_CLOSED', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const closed = new Promise((r) => link.once('close', r));
  const p = handled(link.request('hs', {}, { timeoutMs: 5000 }));
  await peer.next();
  await peer.stop();
  await assert.rejects(p, (e: unknown) => e instanceof LinkError && (e.code === 'E_CLOSED'));
  await closed;
  await assert.rejects(link.request('ping'), (e: unknown) => e instanceof LinkError && e.code === 'E_CLOSED');
});

test('requests longer than the node accepts are refused before sending', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  await assert.rejects(link.request('log', { text: 'x'.repeat(2000) }), (e: unknown) => e instanceof LinkError && e.code === 'E_TOOLONG');
});

test('100k fuzzed serial lines (garbage, bad CRC, partial, oversized) never break the link', async (t) => {
  const { peer, link } = await pair();
  t.after(async () => { await link.close(); await peer.stop(); });
  const rnd = seededRandom(99);
  const good = encodeFrame({ id: 424242, ok: true }); // an id nobody asked for: an orphan, not a crash
  const chunks: string[] = [];
  let sent = 0;
  for (let i = 0; i < 100_000; i++) {
    const k = i % 5;
    let s: string;
    if (k === 0) s = randomBytes(1 + Math.floor(rnd() * 120)).toString('latin1').replace(/\n/g, '');
    else if (k === 1) s = good.slice(0, -2) + 'ZZ';
    else if (k === 2) s = good.slice(0, Math.floor(rnd() * good.length));
    else if (k === 3) s = `{"id":${i},"ev":"op","i":"x"`;
    else s = i % 1000 === 4 ? '{'.repeat(6000) : good;
    chunks.push(`${s}\n`);
    sent++;
    if (chunks.length === 2000) {
      await peer.raw(Buffer.from(chunks.join(''), 'latin1'));
      chunks.length = 0;
    }
  }
  await peer.raw(Buffer.from(chunks.join(''), 'latin1'));
  // The link still answers, in order, after the flood.
  const ping = link.request('ping', {}, { timeoutMs: 20000 });
  const req = await peer.next(20000);
  await peer.frame({ id: req.id as number, ok: true, t_us: 1 });
  assert.equal((await ping).t_us, 1);
  assert.equal(sent, 100_000);
  assert.ok(link.stats.corrupt > 20_000, `corrupt frames counted: ${link.stats.corrupt}`);
  assert.ok(link.oversizedLines >= 90, `oversized lines: ${link.oversizedLines}`);
  assert.ok(link.stats.orphans >= 19_000, `orphans: ${link.stats.orphans}`);
  assert.ok(link.console.length <= 500, 'console log is bounded');
});
