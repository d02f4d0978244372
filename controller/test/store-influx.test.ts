import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import {
  formatLine, InfluxSink, listSpool, lp, openInfluxSink, pushSpool, type InfluxConfig,
} from '../store/influx.js';
import { defaultSpoolDir, influxConfigFrom } from '../store/influx-config.js';
import type { CellInfo, OpRecord, RunInfo } from '../model.js';
import {
  countByMetric, findExecutable, requireService, startVictoriaMetrics, vmExport, vmForceFlush, vmWaitForCount,
  type VictoriaMetrics,
} from './services.js';

const BOUNDED_TAGS = new Set(['__name__', 'campaign', 'rig', 'node', 'board', 'suite', 'profile', 'kind']);

const RUN: RunInfo = {
  id: '20261126T184700Z-quickstart-3f2a', campaign: 'quick start', campaignFile: 'c.yaml', campaignText: '',
  rig: 'virtual', rigFile: 'r.yaml', rigText: '', controllerVersion: '0.1.0', gitCommit: 'abc', seed: 1,
  virtual: true, virtualParts: [], startedAt: new Date().toISOString(), status: 'running',
};

let seq = 0;
/** Ops spread over 3 nodes; `node a,b=c` exercises tag escaping end to end. */
function makeOps(n: number, t0 = Date.now()): OpRecord[] {
  const nodes = ['n1', 'n2', 'node a,b=c'];
  return Array.from({ length: n }, (_, k) => {
    const i = seq++;
    return {
      runId: RUN.id, cellId: `${nodes[i % 3]}/x25519/loopback/64/r0`, node: nodes[i % 3]!, board: 'esp32',
      suite: 'x25519', profile: 'loopback', attempt: 1, index: i, ok: i % 10 !== 0,
      ...(i % 10 === 0 ? { err: 'E_AUTH', msg: 'bad "sig", retry\nlater' } : {}),
      t: { connect: 100 + k, 'dh|encap': 2000.5, hs: 3000 + k, total: 3500 },
      hsTx: 64, hsRx: 96, recTx: 128, recRx: 128, recs: 2, heap: 40_000, stack: 8_000, cpu: 50.5, hostUs: 3600,
      // many ops share a millisecond on purpose: the sink must keep them all distinct
      ts: t0 + Math.floor(k / 20),
    };
  });
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'qslab-spool-'));
}

function cfg(url: string, spoolDir: string, extra: Partial<InfluxConfig> = {}): InfluxConfig {
  return { url, token: '', org: 'qslab', bucket: 'qslab', spoolDir, batchSize: 100, flushIntervalMs: 100, ...extra };
}

// ------------------------------------------------------------------ line protocol (no service needed)

test('influx: line protocol escaping and field typing', () => {
  assert.equal(lp.key('a b,c=d'), 'a\\ b\\,c\\=d');
  assert.equal(lp.key('trail\\'), 'trail\\\\');
  assert.equal(lp.measurement('m x,y'), 'm\\ x\\,y');
  assert.equal(lp.str('say "hi" \\ bye\nnext'), '"say \\"hi\\" \\\\ bye\\nnext"');
  const line = formatLine('qslab_op', { node: 'node a,b=c', suite: 'x25519', rig: '', campaign: undefined }, [
    ['t_hs_us', { kind: 'f', v: 12.5 }], ['bad', { kind: 'f', v: NaN }], ['inf', { kind: 'f', v: Infinity }],
    ['hs_tx', { kind: 'i', v: 64 }], ['ok', { kind: 'b', v: true }], ['run_id', { kind: 's', v: 'r "1"' }],
  ], 1700000000123.7);
  assert.equal(line, 'qslab_op,node=node\\ a\\,b\\=c,suite=x25519 t_hs_us=12.5,hs_tx=64i,ok=true,run_id="r \\"1\\"" 1700000000123');
  assert.equal(formatLine('m', {}, [['s', { kind: 's', v: 'x' }]], 1, false), undefined);
});

test('influx: ids are fields, never tags; timestamps of one series stay distinct', async () => {
  const spool = tmp();
  const lines: string[] = [];
  // capture what the sink sends with a local HTTP server (answers 204 like InfluxDB)
  const srv = await httpServer((req, body) => {
    if (req.url?.startsWith('/api/v2/write')) lines.push(...body.split('\n').filter(Boolean));
    return 204;
  });
  try {
    const sink = openInfluxSink(cfg(srv.url, spool));
    sink.beginRun(RUN);
    const ops = makeOps(60, 1_795_700_000_000);
    sink.addOps(ops);
    sink.addEvent({ runId: RUN.id, ts: 1_795_700_000_000, kind: 'retry', node: 'n1', cellId: 'c', detail: 'x' });
    const c = await sink.close();
    assert.equal(c.written, 62);
    const opLines = lines.filter((l) => l.startsWith('qslab_op,'));
    assert.equal(opLines.length, 60);
    for (const l of opLines) {
      const tagPart = l.slice(0, l.search(/(?<!\\) /));
      assert.ok(!/run_id|cell_id|index/.test(tagPart), `ids leaked into tags: ${tagPart}`);
      assert.match(l, /run_id="20261126T184700Z-quickstart-3f2a"/);
      assert.match(l, /,index=\d+i/);
      assert.match(l, /t_dh_encap_us=2000\.5/);
      assert.match(tagPart, /^qslab_op,board=esp32,campaign=quick\\ start,node=.+,profile=loopback,rig=virtual,suite=x25519$/);
    }
    const seen = new Set<string>();
    for (const l of opLines) {
      const key = l.slice(0, l.search(/(?<!\\) /)) + ' ' + l.slice(l.lastIndexOf(' ') + 1);
      assert.ok(!seen.has(key), `duplicate series+timestamp: ${key}`);
      seen.add(key);
    }
  } finally {
    await srv.close();
    rmSync(spool, { recursive: true, force: true });
  }
});

test('influx: config from rig file and environment; the token only from the environment', () => {
  const none = { storage: { sqlite: 'x.db' } };
  assert.equal(influxConfigFrom(none, {}), undefined);
  const rig = { storage: { sqlite: 'x.db', influx: { url: 'http://h:8086', org: 'lab', bucket: 'b', tokenEnv: 'LAB_TOKEN' } } };
  assert.deepEqual(influxConfigFrom(rig, { LAB_TOKEN: 's3cret' }, '/tmp/sp'), {
    url: 'http://h:8086', org: 'lab', bucket: 'b', token: 's3cret', spoolDir: '/tmp/sp',
  });
  const env = { QSLAB_INFLUX_URL: 'http://vm:8428', QSLAB_INFLUX_STRING_FIELDS: '0', QSLAB_SPOOL: '/s' };
  assert.deepEqual(influxConfigFrom(none, env), {
    url: 'http://vm:8428', org: '', bucket: 'qslab', token: '', spoolDir: '/s', stringFields: false,
  });
  assert.match(defaultSpoolDir({}), /\.qslab\/spool$/);
  assert.throws(() => influxConfigFrom(none, { QSLAB_INFLUX_URL: 'vm:8428' }), /QSLAB_INFLUX_URL/);
});

// ------------------------------------------------------------------ failure paths (no VictoriaMetrics needed)

test('influx: unreachable URL, bad token, 503 and a hanging server never throw; everything is spooled', async () => {
  const dirs: string[] = [];
  const servers: Array<{ close(): Promise<void> }> = [];
  try {
    // unreachable: a port nobody listens on
    const dead = await httpServer(() => 204);
    const deadUrl = dead.url;
    await dead.close();
    // bad token: 401 (not retried)
    let hits401 = 0;
    const auth = await httpServer(() => (hits401++, 401));
    servers.push(auth);
    // overloaded: 503 (retried, then spooled)
    let hits503 = 0;
    const busy = await httpServer(() => (hits503++, 503));
    servers.push(busy);
    // hangs: accepts and never answers (timeout path)
    const hang = await httpServer(() => 'hang');
    servers.push(hang);

    const cases: Array<[string, string, Partial<InfluxConfig>]> = [
      ['unreachable', deadUrl, {}],
      ['bad token', auth.url, { token: 'wrong' }],
      ['503', busy.url, { retryDelayMs: 20 }],
      ['hang', hang.url, { timeoutMs: 300, maxRetries: 1, retryDelayMs: 10 }],
    ];
    for (const [name, url, extra] of cases) {
      const spool = tmp();
      dirs.push(spool);
      const errors: string[] = [];
      const sink = openInfluxSink(cfg(url, spool, { ...extra, onError: (m) => errors.push(m) }));
      sink.beginRun(RUN);
      sink.addOps(makeOps(250));
      sink.upsertCell(cellOf(), makeOps(5));
      sink.endRun(RUN.id, 'failed', new Date().toISOString());
      const c = await sink.close();
      assert.equal(c.written, 0, name);
      assert.equal(c.spooledLines, 253, name);
      assert.equal(c.lostLines, 0, name);
      assert.ok(c.failedBatches >= 3, `${name}: failedBatches ${c.failedBatches}`);
      assert.equal(listSpool(spool).length, c.failedBatches, name);
      const spooled = listSpool(spool).flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean));
      assert.equal(spooled.length, 253, name);
      assert.ok(errors.length > 0 && errors.every((e) => e.includes('spooled')), name);
      assert.deepEqual(readdirSync(spool).filter((n) => n.endsWith('.tmp')), [], name);
      // writes after close are spooled too, never thrown
      sink.addOps(makeOps(1));
      assert.equal(sink.counters.spooledLines, 254, name);
    }
    // 401 is not retried: one request per batch; 503 is retried (2 retries per batch until degraded)
    assert.ok(hits401 >= 3 && hits401 <= 4, `401 hits ${hits401}`);
    assert.ok(hits503 > 3, `503 hits ${hits503}`);

    // pushSpool to a dead server keeps every file and reports them failed
    const r = await pushSpool(cfg(deadUrl, dirs[0]!));
    assert.equal(r.files, 0);
    assert.equal(r.failed, listSpool(dirs[0]!).length);
    assert.ok(r.failed > 0);
    // a malformed config is the one thing that throws, at once
    assert.throws(() => new InfluxSink(cfg('localhost:8086', dirs[0]!)), /must be http/);
    assert.throws(() => new InfluxSink(cfg('not a url', dirs[0]!)), /is not a URL/);
  } finally {
    for (const s of servers) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ against a real VictoriaMetrics

let vmAvailable: boolean | undefined;
function vmPresent(): boolean {
  vmAvailable ??= findExecutable('victoria-metrics') !== null;
  return vmAvailable;
}

async function withVm(t: import('node:test').TestContext): Promise<VictoriaMetrics | null> {
  if (!requireService(t, 'victoria-metrics', vmPresent())) return null;
  const vm = await startVictoriaMetrics();
  if (!requireService(t, 'victoria-metrics', vm !== null)) return null;
  t.after(() => vm!.stop());
  return vm;
}

test('influx → VictoriaMetrics: 2000 ops written, 2000 read back', async (t) => {
  const vm = await withVm(t);
  if (!vm) return;
  const spool = tmp();
  t.after(() => rmSync(spool, { recursive: true, force: true }));
  const N = 2000;
  const sink = openInfluxSink(cfg(vm.url, spool, { batchSize: 500, flushIntervalMs: 200 }));
  sink.beginRun(RUN);
  for (let k = 0; k < N; k += 250) sink.addOps(makeOps(250));
  const c = await sink.close();
  assert.deepEqual({ ...c, retries: 0 }, { written: N + 1, failedBatches: 0, spooledLines: 0, retries: 0, lostLines: 0 });
  assert.equal(listSpool(spool).length, 0);

  assert.equal(await vmWaitForCount(vm.url, 'qslab_op_index', N), N);
  assert.equal(await vmWaitForCount(vm.url, 'qslab_op_t_hs_us', N), N);
  assert.equal(await vmWaitForCount(vm.url, 'qslab_op_ok', N), N);
  const series = await vmExport(vm.url, '{__name__=~"qslab_op_.*"}');
  for (const s of series) {
    for (const label of Object.keys(s.metric)) assert.ok(BOUNDED_TAGS.has(label), `unbounded label ${label}`);
  }
  const nodes = new Set(series.map((s) => s.metric.node));
  assert.deepEqual([...nodes].sort(), ['n1', 'n2', 'node a,b=c']);
  const ok = series.filter((s) => s.metric.__name__ === 'qslab_op_ok').flatMap((s) => s.values);
  assert.equal(ok.filter((v) => v === 0).length, N / 10);
});

test('influx → VictoriaMetrics outage: batches spool while down, pushSpool recovers all, zero lost', async (t) => {
  const vm = await withVm(t);
  if (!vm) return;
  const spool = tmp();
  t.after(() => rmSync(spool, { recursive: true, force: true }));
  const sink = openInfluxSink(cfg(vm.url, spool, { batchSize: 100, flushIntervalMs: 100, retryDelayMs: 50 }));
  t.after(() => sink.close());

  // phase 1: up
  sink.addOps(makeOps(500));
  await sink.flush();
  assert.deepEqual(pick(sink.counters), { written: 500, failedBatches: 0, spooledLines: 0 });
  await vmForceFlush(vm.url);

  // phase 2: down (graceful stop keeps VictoriaMetrics' data on disk)
  await vm.halt();
  const t0 = Date.now();
  for (let k = 0; k < 7; k++) sink.addOps(makeOps(100));
  await sink.flush();
  const downMs = Date.now() - t0;
  assert.deepEqual(pick(sink.counters), { written: 500, failedBatches: 7, spooledLines: 700 });
  assert.equal(listSpool(spool).length, 7);
  assert.ok(downMs < 5000, `outage handling took ${downMs} ms`);
  const whileDown = await pushSpool(cfg(vm.url, spool));
  assert.deepEqual({ files: whileDown.files, failed: whileDown.failed }, { files: 0, failed: 7 });

  // phase 3: back up — the sink recovers by itself for new data
  await vm.restart();
  sink.addOps(makeOps(300));
  const c = await sink.close();
  assert.equal(c.written, 800);
  assert.equal(c.spooledLines, 700);
  assert.equal(c.lostLines, 0);

  const pushed = await pushSpool(cfg(vm.url, spool));
  assert.deepEqual(pushed, { files: 7, lines: 700, failed: 0, errors: [] });
  assert.deepEqual(readdirSync(spool), []);

  const total = c.written + c.spooledLines;
  assert.equal(total, 1500);
  assert.equal(await vmWaitForCount(vm.url, 'qslab_op_index', total), total);
  const byMetric = countByMetric(await vmExport(vm.url, '{__name__=~"qslab_op_.*"}'));
  assert.equal(byMetric.get('qslab_op_hs_tx'), total);
  t.diagnostic(`written live ${c.written}, spooled ${c.spooledLines} in ${c.failedBatches} files, ` +
    `pushed ${pushed.lines}, read back ${byMetric.get('qslab_op_index')}; outage handled in ${downMs} ms`);
});

// ------------------------------------------------------------------ helpers

function pick(c: { written: number; failedBatches: number; spooledLines: number }) {
  return { written: c.written, failedBatches: c.failedBatches, spooledLines: c.spooledLines };
}

function cellOf(): CellInfo {
  return {
    runId: RUN.id, cellId: 'n1/x25519/loopback/64/r0', node: 'n1', board: 'esp32', buildHash: 'h', firmware: '0.1.0',
    suite: 'x25519', profile: 'loopback', aead: 'aes-128-gcm', records: 2, bytes: 64, refresh: 0, repetition: 0,
    ops: 5, status: 'ok', attempts: 1, startedAt: new Date(Date.now() - 1000).toISOString(), endedAt: new Date().toISOString(),
  };
}

async function httpServer(
  handler: (req: IncomingMessage, body: string) => number | 'hang',
): Promise<{ url: string; close(): Promise<void> }> {
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      const status = handler(req, body);
      if (status === 'hang') return;
      res.writeHead(status).end(status === 204 ? undefined : '{"code":"unauthorized","message":"nope"}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}

