// Network profiles in a campaign: the userspace relay shapes each cell's data plane, the report sets handshake
// time and success rate per suite against the profile, and the realized conditions are recorded beside the
// configured ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, ConfigError } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { writeReport } from '../report/report.js';
import { summarize } from '../report/stats.js';

test('a lossy, delayed profile through the relay: slower handshakes, realized conditions recorded, report by profile', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-net-'));
  const profilesFile = join(dir, 'profiles.yaml');
  writeFileSync(profilesFile, [
    'profiles:',
    '  slow-lossy:',
    '    description: test link',
    '    delay_ms: { value: 20, source: "test" }',
    '    loss: { model: random, p: 5, source: "test" }',
  ].join('\n'));
  const store = openStore(join(dir, 'q.db'));
  try {
    const rig = parseConfig('rig.yaml', 'name: net\nnodes:\n  - { name: net-a, kind: virtual, board: esp32, pace: false }\n', rigSchema);
    const campaign = parseConfig('c.yaml', `name: net\nsuites: [x25519, x25519mlkem768]\nprofiles: [loopback, slow-lossy]\nprofiles_file: ${profilesFile}\nhandshakes: 8\nrecords: { count: 2, bytes: 64 }\n`, campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.status, 'completed', JSON.stringify(s.failures));
    assert.equal(s.cells.total, 4);
    const ops = store.getOps(s.runId);
    for (const suite of ['x25519', 'x25519mlkem768']) {
      const fast = summarize(ops.filter((o) => o.suite === suite && o.profile === 'loopback').map((o) => o.t.hs!));
      const slow = summarize(ops.filter((o) => o.suite === suite && o.profile === 'slow-lossy').map((o) => o.t.hs!));
      // two round trips (ClientHello→ServerHello, Finished→Finished) of 40 ms each on the shaped link; the TCP
      // connect ends at the relay, which is local
      assert.ok(slow.median > 78_000, `${suite}: shaped handshake median ${slow.median} µs`);
      assert.ok(fast.median < 50_000, `${suite}: loopback handshake median ${fast.median} µs`);
    }
    const net = store.getEvents(s.runId).filter((e) => e.kind === 'net-realized');
    assert.equal(net.length, 2);
    for (const e of net) assert.match(e.detail, /relay slow-lossy: configured delay 20 ± 0 ms .*loss 5 % → node→server \d+ segments, delay [\d.]+ ± [\d.]+ ms, loss [\d.]+ %/);
    const md = readFileSync(writeReport(store, s.runId, join(dir, 'out')).markdown, 'utf8');
    assert.match(md, /## By network profile/);
    assert.match(md, /\| x25519mlkem768 \| slow-lossy \| 8 \| 100.0 % \|/);
    assert.match(md, /userspace impairment relay/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown profile name is a campaign error naming the file and the fix', async () => {
  const store = openStore(':memory:');
  const rig = parseConfig('rig.yaml', 'name: net\nnodes:\n  - { name: net-b, kind: virtual, board: esp32 }\n', rigSchema);
  const campaign = parseConfig('c.yaml', 'name: net\nsuites: [x25519]\nprofiles: [warp-drive]\nhandshakes: 1\n', campaignSchema);
  await assert.rejects(runCampaign({ rig, campaign, store, quiet: true }), (e: unknown) => e instanceof ConfigError && /profiles: "warp-drive" is not in fixtures\/network-profiles.yaml\. Fix: use one of .*lte/.test(e.message));
  store.close();
});
