// QKD suites through the campaign runner: keys from the ETSI 014 key manager pair, provisioned to the nodes over
// serial, used once each; the empty-pool policies (fallback, abort) and the campaign checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';

const rigYaml = 'name: qkd-rig\nnodes:\n  - { name: qk-a, kind: virtual, board: esp32, pace: false }\n  - { name: qk-b, kind: virtual, board: rpi4, pace: false }\n';

async function run(campaignYaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-qkd-'));
  const store = openStore(join(dir, 'q.db'));
  const rig = parseConfig('rig.yaml', rigYaml, rigSchema);
  const campaign = parseConfig('c.yaml', campaignYaml, campaignSchema);
  try {
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    return { s, ops: store.getOps(s.runId), cells: store.getCells(s.runId), events: store.getEvents(s.runId) };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('QKD suites in a campaign: every key used once, key_IDs recorded per op, checks evaluated', async () => {
  const { s, ops, events } = await run([
    'name: qkd-e2e', 'suites: [qkd-mlkem768, qkd-x25519mlkem768]', 'handshakes: 6',
    'records: { count: 6, bytes: 64, refresh: 2 }', 'qkd: { rate_bps: 2000000, policy: abort }',
    'checks: { min_record_exchanges: 100, no_key_reuse: true, max_failed_ops: 0 }',
  ].join('\n'));
  assert.equal(s.status, 'completed', JSON.stringify(s.failures));
  assert.equal(s.ops.ok, 24);
  assert.deepEqual(s.checks.map((c) => c.ok), [true, true, true]);
  // 1 handshake key + ⌊(6−1)/2⌋ = 2 refresh keys per operation
  assert.ok(ops.every((o) => o.keyIds?.length === 3), JSON.stringify(ops.map((o) => o.keyIds?.length)));
  const ids = ops.flatMap((o) => o.keyIds!);
  assert.equal(new Set(ids).size, 72, 'no key_ID used twice');
  assert.ok(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)));
  assert.ok(ops.every((o) => o.t.qkd! > 0), 'the node timed its QKD step');
  const prov = events.filter((e) => e.kind === 'qkd-provision');
  assert.equal(prov.length, 4);
  assert.ok(prov.every((e) => /18 QKD keys for 6 operations loaded over serial: \d+ B/.test(e.detail)), prov[0]?.detail);
  assert.ok(events.some((e) => e.kind === 'setup' && /ETSI GS QKD 014/.test(e.detail)));
});

test('an empty QKD pool: policy fallback runs the PQ-only suite and says why; policy abort fails the cell', async () => {
  const base = ['suites: [qkd-x25519mlkem768]', 'handshakes: 4', 'records: { count: 2, bytes: 32 }', 'retries: 0'];
  const fb = await run(['name: qkd-fallback', ...base, 'qkd: { rate_bps: 1, policy: fallback }'].join('\n'));
  assert.equal(fb.s.ops.ok, 8);
  assert.ok(fb.ops.every((o) => o.suite === 'x25519mlkem768' && !o.keyIds));
  assert.ok(fb.events.some((e) => e.kind === 'qkd-fallback' && /QKD key pool empty/.test(e.detail)));
  const ab = await run(['name: qkd-abort', ...base, 'qkd: { rate_bps: 1, policy: abort }'].join('\n'));
  assert.equal(ab.s.cells.failed, 2);
  assert.ok(ab.cells.every((c) => /E_QKD_POOL: QKD key pool empty/.test(c.error ?? '')), JSON.stringify(ab.cells.map((c) => c.error)));
  assert.equal(ab.ops.length, 0);
});
