// Store schema v4: the `net` (realized network figures per cell attempt) and `qkd_sweep` tables round-trip, and a
// store written at v3 (the previous migrations, applied as a v3 controller did) is migrated without losing data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, MIGRATIONS, SCHEMA_VERSION } from '../store/sqlite.js';
import type { NetFigures, QkdSweepPoint, RunInfo } from '../model.js';

const run = (id: string): RunInfo => ({
  id, campaign: 'c', campaignFile: 'c.yaml', campaignText: 'name: c', rig: 'r', rigFile: 'r.yaml', rigText: 'name: r',
  controllerVersion: '0.1.0', gitCommit: 'unknown', seed: 1, virtual: true, virtualParts: [], startedAt: '2026-11-26T00:00:00Z', status: 'running',
});

const dir = (packets: number) => ({ packets, lost: 3, loss: 3 / packets, delayMeanMs: 12.5, delaySdMs: 40.25, throughputKbit: 812.5, retransmitted: 3 });

/** A relay-only row: no kernel, TCP counter or (here) RTT parts. */
const relayRow = (runId: string): NetFigures => ({
  runId, cellId: 'n/x25519/lossy/64B/r1', attempt: 1, node: 'n', suite: 'x25519', profile: 'lossy', backend: 'relay',
  configured: { delayMs: 10, jitterMs: 0, lossModel: 'random', lossPct: 5, rateKbit: 0 },
  bursts: 1, flows: 30, resets: 0, up: dir(120), down: dir(90), ts: 1_700_000_000_123,
});

/** A kernel-shaped row with every optional part, under a schedule (no configured profile). */
const kernelRow = (runId: string): NetFigures => ({
  runId, cellId: 'n/x25519/jam/64B/r1', attempt: 2, node: 'n', suite: 'x25519', profile: 'jam', backend: 'kernel',
  shaping: 'kernel (qslab-r0123456789-0): tbf 4000 kbit + nft random 10%; relay: delay_ms',
  bursts: 2, flows: 20, resets: 1, up: dir(300), down: dir(250),
  kernel: { lossUp: 0.1, lossDown: 0.0975, packetsUp: 400, packetsDown: 400 },
  rtt: { n: 17, sockets: 5, medianMs: 10.5, p5Ms: 10.1, p95Ms: 30.75, retrans: 4 },
  tcp: { outSegs: 410, retransSegs: 44 }, ts: 1_700_000_000_456,
});

test('store v4: net rows and QKD sweep points round-trip (absent parts stay absent, NaN QBER stays NaN)', () => {
  const s = openStore(':memory:');
  try {
    assert.equal(s.schemaVersion(), 4);
    s.beginRun(run('r1'));
    s.beginRun(run('r2'));
    const a = relayRow('r1'), b = kernelRow('r1');
    s.addNet(a);
    s.addNet(b);
    s.addNet(relayRow('r2'));
    assert.deepEqual(s.getNet('r1'), [a, b]);
    assert.equal(s.getNet('r2').length, 1);
    assert.deepEqual(s.getNet('none'), []);
    const p: QkdSweepPoint = {
      runId: 'r1', protocol: 'bb84', distanceKm: 12.5, repeat: 2, seed: 3, blockBits: 100000, qber: 0.0361, secretKeyRateBps: 804.25,
      finalBits: 8697, siftedBits: 106563, durationS: 10.82,
    };
    const q: QkdSweepPoint = { ...p, protocol: 'e91', distanceKm: 300, qber: NaN, secretKeyRateBps: 0, finalBits: 0, abortReason: 'too few sifted bits' };
    s.addQkdSweep(p);
    s.addQkdSweep(q);
    const got = s.getQkdSweep('r1');
    assert.deepEqual(got[0], p);
    assert.ok(Number.isNaN(got[1]!.qber));
    assert.deepEqual({ ...got[1]!, qber: 0 }, { ...q, qber: 0 });
    // rows go with their run
    s.db.prepare('DELETE FROM runs WHERE id = ?').run('r1');
    assert.deepEqual(s.getNet('r1'), []);
    assert.deepEqual(s.getQkdSweep('r1'), []);
    assert.equal(s.getNet('r2').length, 1);
  } finally {
    s.close();
  }
});

test('store: a v3 store (made by the v1..v3 migrations) is migrated to v4 and keeps its data', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'qslab-v3-'));
  const path = join(tmp, 'v3.db');
  try {
    assert.equal(SCHEMA_VERSION, 4);
    const raw = new Database(path);
    raw.pragma('journal_mode = WAL');
    raw.exec('CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    for (let v = 0; v < 3; v++) {
      raw.exec(MIGRATIONS[v]!);
      raw.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(v + 1, '2026-11-01T00:00:00Z');
    }
    raw.prepare(`INSERT INTO runs (id, campaign, campaign_file, campaign_text, rig, rig_file, rig_text, controller_version, git_commit, seed,
      virtual, virtual_parts, started_at, ended_at, status) VALUES ('old', 'c', 'c.yaml', 'name: c', 'r', 'r.yaml', 'name: r', '0.0.9', 'abc', 5, 1, '[]',
      '2026-11-01T00:00:00Z', '2026-11-01T00:10:00Z', 'completed')`).run();
    raw.prepare(`INSERT INTO ops (run_id, cell_id, node, board, suite, profile, attempt, idx, ok, t, hs_tx, hs_rx, rec_tx, rec_rx, recs, heap, stack,
      cpu, ts, key_ids) VALUES ('old', 'c0', 'n', 'esp32', 'x25519', 'lossy', 1, 0, 1, '{"hs":1234}', 1, 2, 3, 4, 5, 6, 7, 8.5, 1700000000000, NULL)`).run();
    raw.prepare(`INSERT INTO events (run_id, ts, kind, node, cell_id, detail) VALUES ('old', 1700000000001, 'net-realized', 'n', 'c0', 'relay lossy: ...')`).run();
    assert.throws(() => raw.prepare('SELECT * FROM net').all(), /no such table: net/);
    raw.close();

    const s = openStore(path);
    try {
      assert.equal(s.schemaVersion(), 4);
      const versions = s.db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[];
      assert.deepEqual(versions.map((v) => v.version), [1, 2, 3, 4]);
      assert.equal(s.getRun('old')?.status, 'completed');
      assert.deepEqual(s.getOps('old').map((o) => o.t), [{ hs: 1234 }]);
      assert.equal(s.getEvents('old')[0]?.kind, 'net-realized');
      assert.deepEqual(s.getNet('old'), [], 'a run from before v4 has no net rows (its figures are in its net-realized events)');
      assert.deepEqual(s.getQkdSweep('old'), []);
      const n = relayRow('old');
      s.addNet(n);
      assert.deepEqual(s.getNet('old'), [n]);
    } finally {
      s.close();
    }
    // reopening does not migrate again
    const again = openStore(path);
    assert.equal((again.db.prepare('SELECT COUNT(*) AS n FROM schema_version').get() as { n: number }).n, 4);
    assert.equal(again.getNet('old').length, 1);
    again.close();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
