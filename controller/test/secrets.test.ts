// No secret (session keys, shared secrets, the server's private keys, the InfluxDB token) may appear in logs,
// the store, the spool or reports. The test collects every secret the server derives during a real campaign
// on virtual nodes and searches everything the run wrote for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema } from '../config/rig.js';
import { campaignSchema } from '../config/campaign.js';
import { runCampaign } from '../campaign/runner.js';
import { openStore } from '../store/sqlite.js';
import { InfluxSink } from '../store/influx.js';
import { influxConfigFrom } from '../store/influx-config.js';
import { writeReport } from '../report/report.js';
import { setSecretTap } from '../handshake/keyschedule.js';
import { loadOrCreateServerKeys } from '../handshake/keys.js';
import type { ReadyNode } from '../rig/strategy.js';

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('secrets never reach logs, the store, the spool or reports', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-secrets-'));
  const keyDir = join(dir, 'keys');
  const keys = loadOrCreateServerKeys(keyDir);
  const secrets = new Map<string, Buffer>();
  setSecretTap((name, b) => {
    if (b.length >= 12) secrets.set(b.toString('hex'), Buffer.from(b)); // copy: the live buffer is wiped later
    void name;
  });
  const token = 'qslab-test-token-7f3e9a1c5b2d4e6f';
  const rigYaml = `name: secrets\nnodes:\n  - { name: sec-a, kind: virtual, board: esp32, pace: false }\n  - { name: sec-b, kind: virtual, board: rpi4, pace: false }\nserver: { keys: ${keyDir} }\nstorage:\n  influx: { url: "http://127.0.0.1:9", org: lab, bucket: qslab, tokenEnv: QSLAB_TEST_TOKEN }\n`;
  const campYaml = 'name: secrets\nsuites: [rsa2048, ecdhe-p256-ecdsa, x25519]\nhandshakes: 3\nrecords: { count: 4, bytes: 48, refresh: 2 }\n';
  const rig = parseConfig('rig.yaml', rigYaml, rigSchema);
  const campaign = parseConfig('c.yaml', campYaml, campaignSchema);
  const cfg = influxConfigFrom(rig.value, { QSLAB_TEST_TOKEN: token, QSLAB_SPOOL: join(dir, 'spool') });
  assert.ok(cfg && cfg.token === token);
  const sink = new InfluxSink({ ...cfg, maxRetries: 0, timeoutMs: 500 });
  const store = openStore(join(dir, 'q.db'));
  const logs: string[] = [];
  const origWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    logs.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stderr.write;
  let nodes: ReadyNode[] = [];
  try {
    const s = await runCampaign({ rig, campaign, store, sinks: [sink], quiet: false, hooks: { onReady: (n) => (nodes = n) } });
    assert.equal(s.ops.ok, 18, JSON.stringify(s.failures));
    const counters = await sink.close();
    assert.ok(counters.spooledLines > 0, 'the unreachable InfluxDB made the sink spool');
    (await writeReport(store, s.runId, join(dir, 'out'), { pdf: 'never' }));
  } finally {
    process.stderr.write = origWrite;
    setSecretTap(undefined);
    store.close();
  }
  // 18 handshakes × (Z, PRK, master, finished keys, traffic secrets, per-epoch keys) at least.
  assert.ok(secrets.size >= 18 * 6, `collected ${secrets.size} secrets`);
  const privateDer = [keys.rsa.export({ format: 'der', type: 'pkcs8' }), keys.ecdsa.export({ format: 'der', type: 'pkcs8' })];

  const haystacks: [string, Buffer][] = [
    ['logs', Buffer.from(logs.join(''))],
    ['node consoles', Buffer.from(nodes.flatMap((n) => n.link.console).join('\n'))],
    ...filesUnder(dir).filter((f) => !f.startsWith(keyDir)).map((f): [string, Buffer] => [f, readFileSync(f)]),
  ];
  assert.ok(haystacks.some(([n]) => n.endsWith('q.db')) && haystacks.some(([n]) => n.endsWith('.lp')) && haystacks.some(([n]) => n.endsWith('report.html')));
  for (const [name, hay] of haystacks) {
    const text = hay.toString('latin1');
    const lower = text.toLowerCase();
    assert.ok(!text.includes(token), `InfluxDB token found in ${name}`);
    for (const [hex, raw] of secrets) {
      assert.ok(!lower.includes(hex), `a session secret (hex) found in ${name}`);
      assert.ok(!text.includes(raw.toString('base64')), `a session secret (base64) found in ${name}`);
      assert.ok(hay.indexOf(raw) < 0, `a session secret (raw bytes) found in ${name}`);
    }
    for (const der of privateDer) assert.ok(hay.indexOf(der.subarray(-32)) < 0, `server private key material found in ${name}`);
  }
  rmSync(dir, { recursive: true, force: true });
});
