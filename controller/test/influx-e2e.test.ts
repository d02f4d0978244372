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
import { requireService, startVictoriaMetrics, vmWaitForCount } from './services.js';

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
