// Network profiles in a campaign: the userspace relay (or, as root, the kernel: a namespace + veth per virtual
// node) shapes each cell's data plane, the report sets handshake time and success rate per suite against the
// profile, and the realized conditions are recorded beside the configured ones.
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
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { needRoot } from './services.js';

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
    const campaign = parseConfig('c.yaml', `name: net\nsuites: [x25519, x25519mlkem768]\nprofiles: [loopback, slow-lossy]\nprofiles_file: ${profilesFile}\nshaper: relay\nhandshakes: 8\nrecords: { count: 2, bytes: 64 }\n`, campaignSchema);
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
    const md = readFileSync((await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' })).markdown, 'utf8');
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
      'name: jam', 'suites: [x25519]', 'profiles: [wifi-jam]', `profiles_file: ${profilesFile}`, 'shaper: relay', 'handshakes: 120', 'records: { count: 0, bytes: 16 }',
      'schedules:', '  wifi-jam:', '    phases: [{ profile: clean, seconds: 0.15 }, { profile: jammed, seconds: 0.3 }]', '    repeat: true',
    ].join('\n'), campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.cells.ok, 1, JSON.stringify(s.failures));
    const phases = store.getEvents(s.runId).filter((e) => e.kind === 'net-phase');
    assert.ok(phases.length >= 3, `phase changes recorded: ${phases.length}`);
    assert.match(phases[0]!.detail, /^phase 0: clean for 0.15 s/);
    assert.match(phases[1]!.detail, /^phase 1: jammed for 0.3 s/);
    assert.ok(phases[1]!.ts - phases[0]!.ts >= 140 && phases[1]!.ts - phases[0]!.ts < 400, 'phase timing');
    const md = readFileSync((await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' })).markdown, 'utf8');
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

test('as root: each virtual node in its own namespace, rate and loss shaped by the kernel, realized loss recorded, nothing left', async (t) => {
  if (!needRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'qslab-knet-'));
  const profilesFile = join(dir, 'profiles.yaml');
  writeFileSync(profilesFile, [
    'profiles:',
    '  k-lossy:',
    '    description: test',
    '    rate_kbit: { value: 4000, source: "test" }',
    '    delay_ms: { value: 5, source: "test" }',
    '    loss: { model: random, p: 10, source: "test" }',
    '  k-fast:',
    '    description: test',
    '    rate_kbit: { value: 8000, source: "test" }',
  ].join('\n'));
  const store = openStore(join(dir, 'q.db'));
  const ours = readlinkSync('/proc/self/ns/net');
  const nodeNs: string[] = [];
  try {
    const rig = parseConfig('rig.yaml', 'name: knet\nnodes:\n  - { name: kn-a, kind: virtual, board: esp32, pace: false }\n  - { name: kn-b, kind: virtual, board: rpi4, pace: false }\n', rigSchema);
    const campaign = parseConfig('c.yaml', `name: knet\nsuites: [x25519, mlkem768-mldsa65]\nprofiles: [loopback, k-lossy, k-jam]\nprofiles_file: ${profilesFile}\nshaper: kernel\nhandshakes: 20\nrecords: { count: 2, bytes: 64 }\n` +
      'schedules:\n  k-jam:\n    phases: [{ profile: k-fast, seconds: 0.2 }, { profile: k-lossy, seconds: 0.2 }]\n', campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true, hooks: { onReady: (nodes) => { for (const n of nodes) nodeNs.push(readlinkSync(`/proc/${n.virtual!.pid}/ns/net`)); } } });
    assert.equal(s.status, 'completed', JSON.stringify(s.failures));
    // Real TCP through 10 % random loss each way may, rarely, run out of the node's connect/read timeouts (SYN
    // back-off is 1 s, 3 s, …): a lost handshake is allowed, but only as a network failure, never a crypto one.
    assert.equal(s.ops.total, 240);
    assert.ok(s.ops.ok >= 236, `ok ${s.ops.ok} of 240`);
    const bad = store.getOps(s.runId).filter((o) => !o.ok);
    assert.ok(bad.every((o) => o.err === 'E_NET' || o.err === 'E_TIMEOUT'), JSON.stringify(bad.map((o) => [o.err, o.msg])));
    if (bad.length) t.diagnostic(`lossy-link failures: ${bad.map((o) => `${o.err} ${o.msg ?? ''}`).join('; ')}`);
    // two nodes, two namespaces, neither ours
    assert.equal(new Set(nodeNs).size, 2);
    assert.ok(!nodeNs.includes(ours));
    const ev = store.getEvents(s.runId);
    assert.ok(ev.some((e) => e.kind === 'setup' && /network shaping: kernel .*kn-a=qslab-r[0-9a-f]{10}-\d/.test(e.detail)));
    const net = ev.filter((e) => e.kind === 'net-realized' && /\/k-lossy\//.test(e.cellId ?? ''));
    assert.equal(net.length, 4);
    let drops = 0, packets = 0;
    for (const e of net) {
      assert.match(e.detail, /shaped by kernel \(qslab-r[0-9a-f]{10}-\d\): tbf 4000 kbit \+ nft random 10%; relay: delay_ms/);
      assert.match(e.detail, /node TCP: \d+ segments out, [1-9]\d* retransmitted/); // 10 % loss makes TCP retransmit
      for (const m of e.detail.matchAll(/([\d.]+) % of (\d+) packets|([\d.]+) % of (\d+)(?=;)/g)) {
        const pct = Number(m[1] ?? m[3]), n = Number(m[2] ?? m[4]);
        drops += (pct / 100) * n;
        packets += n;
      }
    }
    const realized = drops / packets;
    t.diagnostic(`kernel nft 10 % loss across 4 cells: ${(100 * realized).toFixed(2)} % of ${packets} packets`);
    assert.ok(packets > 1000 && Math.abs(realized - 0.10) < 0.03, `realized ${(100 * realized).toFixed(2)} % of ${packets}`);
    // jamming through the kernel: each phase re-shapes the veth (tbf rate, nft loss) and says how long it took
    const phases = ev.filter((e) => e.kind === 'net-phase');
    assert.ok(phases.length >= 4, `${phases.length} phase changes`);
    for (const p of phases) assert.match(p.detail, /^phase [01]: k-(fast|lossy) for 0.2 s \(kernel part applied after \d+ ms\)$/);
    assert.ok(!ev.some((e) => e.kind === 'net-error'), 'no shaping error');
    const md = readFileSync((await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' })).markdown, 'utf8');
    assert.match(md, /shaped by kernel/);
    assert.match(md, /own network namespace/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // nothing of the run is left: no qslab namespace, no qslab nft table, no qs* veth
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list']).toString(), /qslab-r[0-9a-f]{10}-/);
  assert.doesNotMatch(execFileSync('nft', ['list', 'tables']).toString(), /qslab_r[0-9a-f]{10}/);
  assert.doesNotMatch(execFileSync('ip', ['-o', 'link']).toString(), /qs[0-9a-f]{10}h/);
});
