// A campaign on virtual nodes writes to a real InfluxDB-compatible server (victoria-metrics) that goes down
// for part of the run; `qslab push` replays the spool afterwards and no point is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { InfluxSink } from '../store/influx.js';
import { influxConfigFrom } from '../store/influx-config.js';
import { ROOT } from '../paths.js';
import { requireService, startVictoriaMetrics, vmExport, vmWaitForCount } from './services.js';

const run = promisify(execFile);

test('InfluxDB outage mid-campaign: failed batches spool, `qslab push` replays them, counts equal', async (t) => {
  const vm = await startVictoriaMetrics();
  if (!requireService(t, 'victoria-metrics', vm !== null)) return;
  const dir = mkdtempSync(join(tmpdir(), 'qslab-influx-e2e-'));
  t.after(async () => {
    await vm!.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const spool = join(dir, 'spool');
  const env = { QSLAB_INFLUX_URL: vm!.url, QSLAB_INFLUX_BUCKET: 'qslab', QSLAB_INFLUX_STRING_FIELDS: '0', QSLAB_SPOOL: spool };
  const rigYaml = 'name: influx-e2e\nnodes:\n  - { name: ie-a, kind: virtual, board: esp32, pace: false }\n  - { name: ie-b, kind: virtual, board: rpi4, pace: false }\n';
  const rig = parseConfig('rig.yaml', rigYaml, rigSchema);
  const campaign = parseConfig('c.yaml', 'name: influx-e2e\nsuites: [x25519, ecdhe-p256-ecdsa]\nhandshakes: 150\nrecords: { count: 2, bytes: 32 }\n', campaignSchema);
  const cfg = influxConfigFrom(rig.value, env)!;
  const sink = new InfluxSink({ ...cfg, batchSize: 50, flushIntervalMs: 100, maxRetries: 1, retryDelayMs: 50, timeoutMs: 1000 });
  const store = openStore(join(dir, 'q.db'));
  let seen = 0;
  let outage: Promise<void> | undefined;
  let back: Promise<void> | undefined;
  const s = await runCampaign({
    rig, campaign, store, sinks: [sink], quiet: true,
    hooks: {
      onOp: () => {
        seen++;
        if (seen === 150) outage = vm!.halt();       // server down for the middle of the run
        if (seen === 450) back = outage!.then(() => vm!.restart());
      },
    },
  });
  await back;
  const counters = await sink.close();
  const ops = store.getOps(s.runId).length;
  store.close();
  assert.equal(s.ops.total, 600);
  assert.equal(ops, 600);
  assert.ok(counters.spooledLines > 0, `the outage must have spooled batches: ${JSON.stringify(counters)}`);
  assert.equal(counters.lostLines, 0);
  assert.ok(readdirSync(spool).length > 0);

  const { stdout } = await run(process.execPath, [join(ROOT, 'dist/controller/cli.js'), 'push', '--spool', spool, '--json'], { env: { ...process.env, ...env } });
  const pushed = JSON.parse(stdout) as { files: number; lines: number; failed: number };
  assert.equal(pushed.failed, 0);
  assert.equal(pushed.lines, counters.spooledLines);
  assert.equal(readdirSync(spool).length, 0, 'spool is empty after push');
  // Every op point is in the server exactly once: none lost, none doubled.
  assert.equal(await vmWaitForCount(vm!.url, 'qslab_op_t_hs_us', 600, { timeoutMs: 20000 }), 600);
});

test('energy windows and downsampled power traces reach InfluxDB; the raw trace stays in the local store', async (t) => {
  const vm = await startVictoriaMetrics();
  if (!requireService(t, 'victoria-metrics', vm !== null)) return;
  const dir = mkdtempSync(join(tmpdir(), 'qslab-influx-energy-'));
  t.after(async () => {
    await vm!.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { QSLAB_INFLUX_URL: vm!.url, QSLAB_INFLUX_BUCKET: 'qslab', QSLAB_INFLUX_STRING_FIELDS: '0', QSLAB_SPOOL: join(dir, 'spool') };
  const rig = parseConfig('rig.yaml', [
    'name: influx-energy',
    'nodes:',
    '  - { name: ien-a, kind: virtual, board: esp32, pace: false, battery: { capacity_mah: 2000, nominal_v: 3.7 } }',
    'meters:',
    '  - { name: ppk2-ien, kind: ppk2, node: ien-a, emulated: true, marker_channel: 0 }',
  ].join('\n'), rigSchema);
  const campaign = parseConfig('c.yaml', 'name: influx-energy\nsuites: [x25519, mlkem768-mldsa65]\nhandshakes: 20\nrecords: { count: 2, bytes: 32 }\n', campaignSchema);
  const sink = new InfluxSink({ ...influxConfigFrom(rig.value, env)!, batchSize: 200, flushIntervalMs: 100 });
  const store = openStore(join(dir, 'q.db'));
  const s = await runCampaign({ rig, campaign, store, sinks: [sink], quiet: true });
  const counters = await sink.close();
  const windows = store.getEnergy(s.runId);
  const traces = store.getTraces(s.runId);
  store.close();
  assert.equal(s.status, 'completed', JSON.stringify(s.failures));
  assert.equal(windows.length, 2);
  assert.equal(counters.lostLines, 0);
  // one energy point per window; the local trace is raw (100 kS/s), InfluxDB gets ≤ 200 means per trace
  assert.equal(await vmWaitForCount(vm!.url, 'qslab_energy_per_op_j', 2), 2);
  const power = await vmExport(vm!.url, 'qslab_power_w');
  const points = power.reduce((a, ser) => a + ser.values.length, 0);
  assert.equal(traces.length, 2);
  for (const tr of traces) assert.ok(tr.t.length > 5000, `raw trace of ${tr.t.length} samples`);
  assert.ok(points > 20 && points <= 2 * 200, `${points} downsampled power points`);
  const exported = await vmExport(vm!.url, 'qslab_energy_per_op_j');
  const got = exported.flatMap((e) => e.values).sort();
  const want = windows.map((w) => w.perOpJ).sort();
  got.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) <= 1e-12 * Math.abs(want[k]!), `${v} vs ${want[k]}`)); // line protocol keeps 15 digits
  t.diagnostic(`energy per op in InfluxDB: ${got.map((v) => (v * 1e3).toFixed(4)).join(', ')} mJ; ${points} power points from ${traces.reduce((a, tr) => a + tr.t.length, 0)} raw samples`);
});
