// A campaign can require the firmware build each node must run (`require_build`): a node on another build is not
// used — its cells fail with the reason and the fix (`qslab flash`) — and the others run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, ConfigError } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { NODE_BINARY } from '../paths.js';
import { execFileSync } from 'node:child_process';

const built = /build ([0-9a-f]{16})/.exec(execFileSync(NODE_BINARY, ['--version']).toString())![1]!;
const rig = parseConfig('rig.yaml', 'name: rb\nnodes:\n  - { name: rb-a, kind: virtual, board: esp32 }\n  - { name: rb-b, kind: virtual, board: rpi4 }\n', rigSchema);

test('require_build: the node on the required build runs, the other fails with the fix; unknown names are an input error', async () => {
  const other = built.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  const store = openStore(':memory:');
  try {
    const campaign = parseConfig('c.yaml', `name: rb\nsuites: [x25519]\nhandshakes: 3\nrequire_build: { rb-a: ${built}, rb-b: ${other} }\n`, campaignSchema);
    const s = await runCampaign({ rig, campaign, store, quiet: true });
    assert.equal(s.status, 'failed');
    assert.deepEqual(s.nodes.map((n) => [n.name, n.ok]), [['rb-a', true], ['rb-b', false]]);
    assert.equal(s.cells.ok, 1);
    const b = s.failures.find((f) => f.cellId.startsWith('rb-b/'))!;
    assert.match(b.error, new RegExp(`node lost: runs build ${built}, the campaign requires ${other}\\. Fix: qslab flash --rig rig\\.yaml --node rb-b`));
    // one hash for every node
    const all = await runCampaign({ rig, campaign: parseConfig('c.yaml', `name: rb\nsuites: [x25519]\nhandshakes: 3\nrequire_build: ${built}\n`, campaignSchema), store, quiet: true });
    assert.equal(all.status, 'completed');
    assert.throws(() => parseConfig('c.yaml', 'name: rb\nsuites: [x25519]\nhandshakes: 3\nrequire_build: ABC\n', campaignSchema), /require_build: .*16 lower-case hex digits/);
    await assert.rejects(runCampaign({ rig, campaign: parseConfig('c.yaml', `name: rb\nsuites: [x25519]\nhandshakes: 3\nrequire_build: { ghost: ${built} }\n`, campaignSchema), store, quiet: true }),
      (e: unknown) => e instanceof ConfigError && /require_build: ghost not among this campaign's nodes/.test(e.message));
  } finally {
    store.close();
  }
});
