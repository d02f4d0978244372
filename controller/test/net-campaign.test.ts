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
  await assert.rejects(runCampaign({ rig, campaign, store, quiet: true }), (e: unknown) => e instanceof ConfigError && /profiles: "warp-drive" is neither in fixtures\/network-profiles.yaml nor a schedule of this campaign\. Fix: use one of .*lte/.test(e.message));
  store.close();
});

test('a jamming schedule: the link cycles clean → jammed, each phase change is timestamped, the report splits by phase', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-jam-'));
  const profilesFile = join(dir, 'profiles.yaml');
  writeFileSync(profilesFile, [
    'profiles:',
    '  clean:',
    '    description: test',
    '    delay_ms: { value: 1, source: "test" }',
    '  jammed:',
    '    description: test',
    '    delay_ms: { value: 30, source: "test" }',
    '    loss: { model: random, p: 10, source: "test" }',
  ].join('\n'));
  const store = openStore(join(dir, 'q.db'));
  try {
    const rig = parseConfig('rig.yaml', 'name: jam\nnodes:\n  - { name: jam-a, kind: virtual, board: esp32, pace: false }\n', rigSchema);
    const campaign = parseConfig('c.yaml', [
      'name: jam', 'suites: [x25519]', 'profiles: [wifi-jam]', `profiles_file: ${profilesFile}`, 'handshakes: 120', 'records: { count: 0, bytes: 16 }',
      'schedules:', '  wifi-jam:', '    phases: [{ profile: clean, seconds: 0.15 }, { profile: jammed, seconds: 0.3 }]', '    repeat: true',
    ].join('\n'), campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.cells.ok, 1, JSON.stringify(s.failures));
    const phases = store.getEvents(s.runId).filter((e) => e.kind === 'net-phase');
    assert.ok(phases.length >= 3, `phase changes recorded: ${phases.length}`);
    assert.match(phases[0]!.detail, /^phase 0: clean for 0.15 s/);
    assert.match(phases[1]!.detail, /^phase 1: jammed for 0.3 s/);
    assert.ok(phases[1]!.ts - phases[0]!.ts >= 140 && phases[1]!.ts - phases[0]!.ts < 400, 'phase timing');
    const md = readFileSync(writeReport(store, s.runId, join(dir, 'out')).markdown, 'utf8');
    const row = (p: string) => new RegExp(`\\| x25519 \\| ${p} \\| (\\d+) \\| [\\d.]+ % \\| ([\\d.]+) (µs|ms)`).exec(md);
    const clean = row('clean');
    const jammed = row('jammed');
    assert.ok(clean && jammed, md.slice(md.indexOf('## Jamming'), md.indexOf('## Jamming') + 400));
    const ms = (m: RegExpExecArray) => Number(m[2]) / (m[3] === 'µs' ? 1000 : 1);
    assert.ok(ms(jammed) > ms(clean) + 40, `jammed ${ms(jammed)} ms vs clean ${ms(clean)} ms`);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
