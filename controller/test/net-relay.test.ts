// Fidelity of the userspace impairment relay (controller/net/relay.ts) on loopback, and the profiles file.
import { until } from './harness.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ImpairmentRelay } from '../net/relay.js';
import { loadProfiles, makeProfile, parseProfiles, type LinkProfile, type LossModel } from '../net/profiles.js';
import { problems } from './harness.js';

const HDR = 64;


interface Sink {
  sock: UdpSocket;
  port: number;
  seqs: number[];
  oneWay: number[];
}

async function udpSink(): Promise<Sink> {
  const sock = createSocket('udp4');
  const sink: Sink = { sock, port: 0, seqs: [], oneWay: [] };
  sock.on('message', (m) => {
    const now = performance.now();
    sink.seqs.push(m.readUInt32BE(0));
    sink.oneWay.push(now - m.readDoubleBE(4));
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  sink.port = sock.address().port;
  return sink;
}

/** Sends n numbered, timestamped datagrams to the relay, `burst` per `tickMs`. */
async function sendPaced(port: number, n: number, burst: number, tickMs: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  sock.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  try {
    for (let seq = 0; seq < n; ) {
      for (let k = 0; k < burst && seq < n; k++, seq++) {
        const b = Buffer.alloc(HDR);
        b.writeUInt32BE(seq, 0);
        b.writeDoubleBE(performance.now(), 4);
        sock.send(b);
      }
      await new Promise((r) => setTimeout(r, tickMs));
    }
  } finally {
    await new Promise<void>((r) => setTimeout(r, 20)); // let the last sends leave before closing the socket
    sock.close();
  }
}

/** One relay + sink run; resolves when every datagram the relay delivered has reached the sink. */
async function udpRun(profile: LinkProfile, seed: number, n: number, burst: number, tickMs: number) {
  const sink = await udpSink();
  const relay = new ImpairmentRelay({ upstream: { host: '127.0.0.1', port: sink.port }, profile, seed, protocol: 'udp' });
  try {
    const { port } = await relay.start();
    await sendPaced(port, n, burst, tickMs);
    await until(() => relay.stats().up.packets === n, 5000, () => `relay saw ${relay.stats().up.packets}/${n} (kernel drops?)`);
    await until(
      () => relay.stats().up.delivered + relay.stats().up.dropped === n && sink.seqs.length === relay.stats().up.delivered,
      10_000,
      () => `sink ${sink.seqs.length}, relay ${JSON.stringify(relay.stats().up)}`,
    );
    return { sink, stats: relay.stats() };
  } finally {
    await relay.close();
    sink.sock.close();
  }
}

const lossProfile = (loss: LossModel) => makeProfile({ name: 't', loss });
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};

test('UDP random loss 1 / 5 / 20 % is realized within ±10 % relative over 20k datagrams', async () => {
  for (const p of [1, 5, 20]) {
    const n = 20_000;
    const { sink, stats } = await udpRun(lossProfile({ model: 'random', p }), 1000 + p, n, 100, 5);
    const realized = (100 * (n - sink.seqs.length)) / n;
    console.log(`loss ${p} %: realized ${realized.toFixed(3)} % (relay says ${(100 * stats.up.realizedLoss).toFixed(3)} %)`);
    assert.ok(Math.abs(realized - p) <= 0.1 * p, `configured ${p} %, realized ${realized} %`);
    assert.equal(stats.up.dropped, n - sink.seqs.length);
  }
});

test('UDP delay 50 ms ± 10 ms (normal): one-way mean within ±1 ms, SD within ±15 %', async () => {
  const profile = makeProfile({ name: 'd', delay_ms: 50, jitter_ms: 10, jitter_distribution: 'normal' });
  const n = 10_000;
  const { sink, stats } = await udpRun(profile, 42, n, 40, 10);
  assert.equal(sink.oneWay.length, n);
  const m = mean(sink.oneWay);
  const s = sd(sink.oneWay);
  console.log(
    `delay: measured mean ${m.toFixed(3)} ms SD ${s.toFixed(3)} ms; applied mean ${stats.up.delayMeanMs.toFixed(3)} SD ${stats.up.delaySdMs.toFixed(3)}; ` +
      `scheduler late ${stats.up.schedulingLateMs.toFixed(3)} ms; reordered ${stats.up.reordered}`,
  );
  assert.ok(Math.abs(m - 50) <= 1, `mean ${m}`);
  assert.ok(Math.abs(s - 10) <= 1.5, `SD ${s}`);
  assert.ok(stats.up.reordered > 0, 'jitter larger than the packet gap reorders (netem semantics)');
});

test('Gilbert-Elliott: mean loss burst length within ±15 % of 1/r', async () => {
  const r = 25;
  const n = 20_000;
  const { sink, stats } = await udpRun(lossProfile({ model: 'gilbert-elliott', p: 2, r, one_minus_h: 100, one_minus_k: 0 }), 7, n, 100, 5);
  const bursts: number[] = [];
  let prev = -1;
  for (const s of [...sink.seqs, n]) {
    if (s - prev > 1) bursts.push(s - prev - 1);
    prev = s;
  }
  const mb = mean(bursts);
  console.log(`GE: ${bursts.length} bursts, mean length ${mb.toFixed(3)} (1/r = ${100 / r}); relay ${JSON.stringify(stats.up.lossBursts)}`);
  assert.ok(bursts.length > 100);
  assert.ok(Math.abs(mb - 100 / r) <= 0.15 * (100 / r), `mean burst ${mb}`);
  assert.ok(Math.abs(stats.up.lossBursts.meanLength - mb) < 1e-9, 'relay burst stats agree with the sink');
});

test('same seed → same drop pattern; another seed → another', async () => {
  const prof = lossProfile({ model: 'random', p: 5 });
  const a = await udpRun(prof, 7, 3000, 100, 5);
  const b = await udpRun(prof, 7, 3000, 100, 5);
  const c = await udpRun(prof, 8, 3000, 100, 5);
  assert.deepEqual(b.sink.seqs, a.sink.seqs);
  assert.notDeepEqual(c.sink.seqs, a.sink.seqs);
});

async function tcpServer(onConn: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

test('TCP rate limit 2 Mbit/s (+52 B overhead per segment) within ±5 %', async () => {
  let first = -1;
  let firstLen = 0;
  let last = -1;
  let total = 0;
  let ended = false;
  const { server, port } = await tcpServer((s) => {
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      if (first < 0) {
        first = now;
        firstLen = d.length;
      }
      last = now;
      total += d.length;
    });
    s.on('end', () => {
      ended = true;
      s.end();
    });
  });
  const relay = new ImpairmentRelay({
    upstream: { host: '127.0.0.1', port },
    profile: makeProfile({ name: 'r', rate_kbit: 2000, overhead_bytes: 52 }),
    seed: 1,
    protocol: 'tcp',
  });
  try {
    const addr = await relay.start();
    const bytes = 600_000;
    const c = connect(addr.port, addr.host);
    c.on('error', () => {});
    c.end(randomBytes(bytes));
    await until(() => ended, 10_000, () => `received ${total}/${bytes}`);
    assert.equal(total, bytes);
    const st = relay.stats().up;
    const goodput = ((total - firstLen) * 8) / (last - first);
    const expected = (2000 * st.bytes) / (st.bytes + 52 * st.packets);
    console.log(`rate: goodput ${goodput.toFixed(1)} kbit/s, expected ${expected.toFixed(1)} (${st.packets} segments)`);
    assert.ok(Math.abs(goodput - expected) <= 0.05 * expected, `goodput ${goodput}, expected ${expected}`);
    c.destroy();
  } finally {
    await relay.close();
    server.close();
  }
});

async function echoRelay(profile: LinkProfile) {
  const serverSide: Socket[] = [];
  const { server, port } = await tcpServer((s) => {
    serverSide.push(s);
    s.on('error', () => {});
    s.pipe(s); // echoes, and ends its side after the client's FIN (half-close)
  });
  const relay = new ImpairmentRelay({ upstream: { host: '127.0.0.1', port }, profile, seed: 3, protocol: 'tcp' });
  const addr = await relay.start();
  return { relay, addr, serverSide, close: async () => (await relay.close(), server.close()) };
}

test('TCP stays byte-exact under 5 % loss (retransmission model), half-close propagates, delay is visible', async () => {
  const e = await echoRelay(makeProfile({ name: 'l', delay_ms: 10, loss: { model: 'random', p: 5 } }));
  try {
    // Delay: a 1-byte ping takes >= 2 x 10 ms.
    const c = connect(e.addr.port, e.addr.host);
    c.on('error', () => {});
    await new Promise<void>((r) => c.once('connect', () => r()));
    const chunks: Buffer[] = [];
    let gotEnd = false;
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => (gotEnd = true));
    const t0 = performance.now();
    c.write(Buffer.from([1]));
    await until(() => chunks.length > 0, 5000, () => 'no ping reply');
    const rtt = performance.now() - t0;
    assert.ok(rtt >= 20, `RTT ${rtt} ms through a 10 ms relay`);
    // Bulk: 400 kB each way, byte-exact, then FIN -> FIN.
    const data = randomBytes(400_000);
    c.end(data);
    await until(() => gotEnd, 30_000, () => `echoed ${Buffer.concat(chunks).length - 1} bytes`);
    const back = Buffer.concat(chunks).subarray(1);
    assert.equal(back.length, data.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    const st = e.relay.stats();
    console.log(`TCP: RTT ${rtt.toFixed(1)} ms; up ${st.up.packets} seg, ${st.up.retransmitted} retx; down ${st.down.packets} seg, ${st.down.retransmitted} retx; up delay mean ${st.up.delayMeanMs.toFixed(1)} ms`);
    assert.ok(st.up.retransmitted > 0 && st.down.retransmitted > 0, 'losses were modelled as retransmissions');
    assert.ok(st.up.delayMeanMs > 10, 'retransmission delay shows in the applied delay');
    assert.equal(st.up.dropped, 0);
  } finally {
    await e.close();
  }
});

test('TCP: a client RST resets the upstream connection', async () => {
  const e = await echoRelay(makeProfile({ name: 'i' }));
  try {
    const c = connect(e.addr.port, e.addr.host);
    c.on('error', () => {});
    await new Promise<void>((r) => c.once('connect', () => r()));
    await until(() => e.serverSide.length === 1, 5000, () => 'upstream never accepted');
    const up = e.serverSide[0]!;
    let upErr = '';
    let upClosed = false;
    up.on('error', (err: NodeJS.ErrnoException) => (upErr = err.code ?? err.message));
    up.on('close', () => (upClosed = true));
    c.resetAndDestroy();
    await until(() => upClosed, 5000, () => 'upstream still open');
    assert.equal(upErr, 'ECONNRESET');
  } finally {
    await e.close();
  }
});

test('live setProfile switches the loss model (jamming phase)', async () => {
  const sink = await udpSink();
  const relay = new ImpairmentRelay({ upstream: { host: '127.0.0.1', port: sink.port }, profile: makeProfile({ name: 'clear' }), seed: 5, protocol: 'udp' });
  try {
    const { port } = await relay.start();
    await sendPaced(port, 500, 100, 5);
    await until(() => sink.seqs.length === 500, 5000, () => `clear phase: ${sink.seqs.length}/500`);
    relay.setProfile(lossProfile({ model: 'random', p: 100 }));
    await sendPaced(port, 500, 100, 5);
    await until(() => relay.stats().up.packets === 1000, 5000, () => 'jam phase not seen');
    assert.equal(sink.seqs.length, 500);
    assert.equal(relay.stats().up.dropped, 500);
    assert.equal(relay.stats().profile, 't');
  } finally {
    await relay.close();
    sink.sock.close();
  }
});


test('the shipped profiles file is valid, complete and sourced', () => {
  const ps = loadProfiles();
  for (const n of ['ideal', 'iot-wifi', 'lte', '5g', 'nb-iot', 'satellite', 'congested', 'paper-iot-wifi', 'paper-lte', 'paper-5g', 'paper-5g-quantum-sim']) {
    assert.ok(ps.has(n), `missing profile ${n}`);
  }
  assert.deepEqual(
    [...ps.values()].map((p) => p.paperNetworkType).filter(Boolean),
    ['IoT Wi-Fi', 'LTE', '5G', '5G + Quantum Sim'],
  );
  for (const p of ps.values()) {
    for (const k of ['delay_ms', 'jitter_ms', 'rate_kbit', 'corrupt_pct', 'duplicate_pct', 'reorder_pct', 'overhead_bytes'] as const) {
      if (p[k] !== 0) assert.ok(p.sources[k], `${p.name}.${k} has no source`);
    }
    if (p.loss.model !== 'none') assert.ok(p.sources.loss, `${p.name}.loss has no source`);
  }
  assert.deepEqual(ps.get('paper-5g')!.loss, ps.get('5g')!.loss);
  assert.equal(ps.get('congested')!.loss.model, 'markov4');
});

test('profile file errors name file:line:col, the path and the fix', () => {
  const f = 'fixtures/bad.yaml';
  let p = problems(() => parseProfiles(f, 'profiles:\n  x:\n    jitter_ms: { value: 3, distribution: gauss, source: "s s" }\n'));
  assert.match(p[0]!, /^fixtures\/bad\.yaml:3:\d+: profiles\.x\.jitter_ms\.distribution: .*Fix: use one of: "normal", "uniform", "pareto"/);
  p = problems(() => parseProfiles(f, 'profiles:\n  x:\n    delay_ms: { value: 3 }\n'));
  assert.match(p[0]!, /^fixtures\/bad\.yaml:3:\d+: profiles\.x\.delay_ms\.source: .*Fix: add the required key/);
  p = problems(() => parseProfiles(f, 'profiles:\n  x:\n    extends: nope\n'));
  assert.match(p[0]!, /^fixtures\/bad\.yaml:3:14: profiles\.x\.extends: unknown profile "nope"/);
  p = problems(() => parseProfiles(f, 'profiles:\n  x:\n    loss: { model: random, p: 120, source: "s s" }\n'));
  assert.match(p[0]!, /^fixtures\/bad\.yaml:3:\d+: profiles\.x\.loss\.p: .*Fix: use a value <= 100/);
});
