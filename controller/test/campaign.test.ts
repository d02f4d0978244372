// End to end on the virtual rig: runner, store, report; a node killed mid-campaign; Ctrl-C keeps results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { writeReport } from '../report/report.js';
import { ROOT } from '../paths.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'qslab-test-'));

function rigText(names: string[], board = (i: number) => (i % 2 ? 'rpi4' : 'esp32')): string {
  return `name: test-rig\nnodes:\n${names.map((n, i) => `  - { name: ${n}, kind: virtual, board: ${board(i)}, baud: 115200, pace: false }`).join('\n')}\n`;
}

function load(rig: string, campaign: string) {
  return {
    rig: { file: 'test-rig.yaml', text: rig, value: parseConfig('test-rig.yaml', rig, rigSchema).value },
    campaign: { file: 'test-campaign.yaml', text: campaign, value: parseConfig('test-campaign.yaml', campaign, campaignSchema).value },
  };
}

test('a campaign runs 3 suites on 2 virtual nodes, stores every operation and writes a report', async () => {
  const dir = tmp();
  const store = openStore(join(dir, 'q.db'));
  try {
    const cfg = load(rigText(['e2e-esp', 'e2e-pi']), 'name: e2e\nsuites: [rsa2048, ecdhe-p256-ecdsa, x25519]\nhandshakes: 6\nrecords: { count: 4, bytes: 64, refresh: 2, aead: chacha20-poly1305 }\n');
    const s = await runCampaign({ ...cfg, store, quiet: true });
    assert.equal(s.status, 'completed', JSON.stringify(s.failures));
    assert.deepEqual(s.cells, { total: 6, ok: 6, failed: 0, skipped: 0 });
    assert.deepEqual(s.ops, { total: 36, ok: 36, failed: 0 });
    const ops = store.getOps(s.runId);
    assert.equal(ops.length, 36);
    assert.ok(ops.every((o) => o.ok && o.t.hs! > 0 && o.recs === 4));
    assert.ok(ops.filter((o) => typeof o.hostUs === 'number' && o.hostUs > 0).length >= 34, 'server wall time joined to node ops');
    const run = store.getRun(s.runId)!;
    assert.equal(run.status, 'completed');
    assert.equal(run.virtual, true);
    assert.equal(store.getCells(s.runId).filter((c) => c.status === 'ok').length, 6);
    const r = (await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' }));
    const md = readFileSync(r.markdown, 'utf8');
    for (const suite of ['rsa2048', 'ecdhe-p256-ecdsa', 'x25519']) for (const node of ['e2e-esp', 'e2e-pi']) assert.match(md, new RegExp(`\\| ${suite} \\| ${node} \\| loopback \\| (esp32|rpi4) \\| 6 \\| 100.0 % \\|`));
    assert.match(md, /Virtual rig/);
    assert.match(md, /commit /);
    const html = readFileSync(r.html, 'utf8');
    assert.match(html, /<svg [^>]*role="img"[^>]*>[\s\S]*data-mark="bar"/);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg")/, 'self-contained, no scripts or remote resources (the SVG namespace name is not a resource)');
    assert.equal(readFileSync(r.csv, 'utf8').trim().split('\n').length, 7);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a virtual node killed mid-campaign: its cells fail with the reason, the others complete', async () => {
  const dir = tmp();
  const store = openStore(join(dir, 'q.db'));
  try {
    const cfg = load(rigText(['kill-a', 'kill-b']), 'name: killtest\nsuites: [x25519, ecdhe-p256-ecdsa]\nhandshakes: 40\nretries: 1\nrecords: { count: 2, bytes: 32 }\ntimeouts: { idle_s: 3 }\n');
    let killed = false;
    const s = await runCampaign({
      ...cfg, store, quiet: true,
      hooks: {
        onOp: (op, node) => {
          if (!killed && node.spec.name === 'kill-b' && op.index === 5) {
            killed = true;
            node.virtual!.kill();
          }
        },
      },
    });
    assert.ok(killed);
    const cells = store.getCells(s.runId);
    const a = cells.filter((c) => c.node === 'kill-a');
    const b = cells.filter((c) => c.node === 'kill-b');
    assert.ok(a.every((c) => c.status === 'ok'), JSON.stringify(a));
    assert.ok(b.every((c) => c.status === 'failed'), JSON.stringify(b));
    assert.ok(b.every((c) => /E_CLOSED|node lost/.test(c.error ?? '')), JSON.stringify(b.map((c) => c.error)));
    assert.equal(s.status, 'failed');
    assert.ok(store.getEvents(s.runId).some((e) => e.kind === 'node-lost' && e.node === 'kill-b'));
    // Operations that finished before the kill are kept.
    assert.ok(store.getOps(s.runId).filter((o) => o.node === 'kill-b').length >= 5);
    const md = readFileSync((await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' })).markdown, 'utf8');
    assert.match(md, /## Cells not completed/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGINT stops a run cleanly: exit 130, partial results kept, no node processes left', async () => {
  const dir = tmp();
  const rigFile = join(dir, 'rig.yaml');
  const campFile = join(dir, 'c.yaml');
  writeFileSync(rigFile, rigText(['sigint-a', 'sigint-b']));
  writeFileSync(campFile, `name: sigint\nrig: ${rigFile}\nsuites: [x25519]\nhandshakes: 100000\nrecords: { count: 1, bytes: 16 }\n`);
  const db = join(dir, 'q.db');
  const child = spawn(process.execPath, [join(ROOT, 'dist/controller/cli.js'), 'run', campFile, '--db', db, '--no-report'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Wait until the nodes are up and working.
  const deadline = Date.now() + 15000;
  while (!/node sigint-b: /.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  const store = openStore(db);
  try {
    const run = store.latestRun()!;
    assert.equal(run.status, 'interrupted');
    assert.ok(store.getOps(run.id).length > 10, 'operations done before Ctrl-C are kept');
    assert.ok(store.getEvents(run.id).some((e) => e.kind === 'interrupt'));
  } finally {
    store.close();
  }
  let left = '';
  try {
    left = execFileSync('pgrep', ['-f', 'qslab-node.*--name sigint-']).toString();
  } catch {
    left = '';
  }
  assert.equal(left.trim(), '', 'virtual node processes left behind');
  assert.ok(existsSync(db));
  rmSync(dir, { recursive: true, force: true });
});
