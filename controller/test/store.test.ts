import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore, SCHEMA_VERSION } from '../store/sqlite.js';
import type { CellInfo, OpRecord, RunEvent, RunInfo } from '../model.js';

function run(id: string, startedAt: string, extra: Partial<RunInfo> = {}): RunInfo {
  return {
    id, campaign: 'quickstart', campaignFile: 'fixtures/campaigns/quickstart.yaml', campaignText: 'name: quickstart\n',
    rig: 'virtual', rigFile: 'rigs/virtual.yaml', rigText: 'name: virtual\n', controllerVersion: '0.1.0',
    gitCommit: 'abc123', seed: 42, virtual: true, virtualParts: ['nodes: posix firmware on ptys', 'data plane: loopback'],
    startedAt, status: 'running', ...extra,
  };
}

function cell(runId: string, cellId: string, extra: Partial<CellInfo> = {}): CellInfo {
  return {
    runId, cellId, node: 'n1', board: 'esp32', buildHash: 'deadbeef', firmware: '0.1.0', suite: 'x25519mlkem768',
    profile: 'loopback', aead: 'aes-128-gcm', records: 4, bytes: 256, refresh: 0, repetition: 0, ops: 10,
    status: 'running', attempts: 1, ...extra,
  };
}

function op(runId: string, cellId: string, index: number, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    runId, cellId, node: 'n1', board: 'esp32', suite: 'x25519mlkem768', profile: 'loopback', attempt: 1, index,
    ok: true, t: { connect: 120, keygen: 5100.5, encap: 800, kdf: 30, hs: 7000, total: 7300 },
    hsTx: 1216, hsRx: 1120, recTx: 1088, recRx: 1088, recs: 4, heap: 48_000, stack: 9_000, cpu: 87.5,
    hostUs: 7412.25, ts: 1_795_700_000_000 + index, ...extra,
  };
}

test('sqlite: :memory: round trip of runs, cells, ops, events', () => {
  const store = openStore(':memory:');
  try {
    assert.equal(store.schemaVersion(), SCHEMA_VERSION);
    assert.equal(store.latestRun(), undefined);
    assert.deepEqual(store.listRuns(), []);

    const r1 = run('r1', '2026-11-26T10:00:00.000Z');
    const r2 = run('r2', '2026-11-26T11:00:00.000Z', { virtual: false, virtualParts: [], seed: 7 });
    store.beginRun(r1);
    store.beginRun(r2);
    assert.deepEqual(store.getRun('r1'), r1);
    assert.equal(store.getRun('nope'), undefined);
    assert.deepEqual(store.latestRun(), r2);

    store.endRun('r1', 'completed', '2026-11-26T10:30:00.000Z');
    assert.deepEqual(store.getRun('r1'), { ...r1, status: 'completed', endedAt: '2026-11-26T10:30:00.000Z' });
    assert.throws(() => store.endRun('nope', 'failed', '2026-11-26T10:30:00.000Z'), /no run with id nope/);
    assert.deepEqual(store.listRuns().map((r) => r.id), ['r1', 'r2']);

    // cells: upsert keeps first-insert order and replaces fields; optional fields round-trip as absent/present
    const c1 = cell('r1', 'n1/x25519mlkem768/loopback/256/r0');
    const c2 = cell('r1', 'n1/x25519mlkem768/loopback/256/r1', { repetition: 1 });
    store.upsertCell(c1);
    store.upsertCell(c2);
    const c1done: CellInfo = {
      ...c1, status: 'failed', attempts: 2, error: 'E_NET: connection refused',
      startedAt: '2026-11-26T10:01:00.000Z', endedAt: '2026-11-26T10:02:00.000Z',
    };
    store.upsertCell(c1done);
    assert.deepEqual(store.getCells('r1'), [c1done, c2]);
    assert.deepEqual(store.getCells('r2'), []);

    // ops: one batch, mixed ok/failed, optional fields absent on some
    const ops: OpRecord[] = [];
    for (let k = 0; k < 250; k++) ops.push(op('r1', c1.cellId, k));
    const failed = op('r1', c1.cellId, 250, { ok: false, err: 'E_AUTH', msg: 'signature check failed', t: { connect: 100 } });
    delete failed.hostUs;
    ops.push(failed);
    store.addOps(ops);
    store.addOps([]);
    store.addOps([op('r2', 'other', 0, { attempt: 2, cpu: 0 })]);
    assert.deepEqual(store.getOps('r1'), ops);
    assert.equal(store.getOps('r2').length, 1);
    assert.equal(store.getOps('r2')[0]!.attempt, 2);

    // events
    const evs: RunEvent[] = [
      { runId: 'r1', ts: 1_795_700_000_100, kind: 'retry', node: 'n1', cellId: c1.cellId, detail: 'attempt 2: E_NET' },
      { runId: 'r1', ts: 1_795_700_000_200, kind: 'console', detail: 'ets Jun  8 2016 00:22:57\nrst:0x1 "boot"' },
    ];
    store.addEvent(evs[0]!);
    store.addEvents([evs[1]!]);
    assert.deepEqual(store.getEvents('r1'), evs);
    assert.deepEqual(store.getEvents('r2'), []);
  } finally {
    store.close();
  }
});

test('sqlite: ops of an unknown run are refused (foreign key)', () => {
  const store = openStore(':memory:');
  try {
    assert.throws(() => store.addOps([op('ghost', 'c', 0)]), /FOREIGN KEY/);
  } finally {
    store.close();
  }
});

test('sqlite: file store creates parent dirs, uses WAL, and keeps data across reopen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-store-'));
  try {
    const path = join(dir, 'deep', 'er', 'qslab.db');
    const a = openStore(path);
    assert.equal(a.db.pragma('journal_mode', { simple: true }), 'wal');
    const r = run('r1', '2026-11-26T10:00:00.000Z');
    a.beginRun(r);
    a.upsertCell(cell('r1', 'c1'));
    a.addOps([op('r1', 'c1', 0), op('r1', 'c1', 1)]);
    a.addEvent({ runId: 'r1', ts: 1, kind: 'node-restart', node: 'n1', detail: 'power-cycled' });
    a.close();
    assert.ok(existsSync(path));

    const b = openStore(path);
    try {
      assert.equal(b.schemaVersion(), SCHEMA_VERSION);
      assert.deepEqual(b.latestRun(), r);
      assert.equal(b.getCells('r1').length, 1);
      assert.deepEqual(b.getOps('r1'), [op('r1', 'c1', 0), op('r1', 'c1', 1)]);
      assert.equal(b.getEvents('r1').length, 1);
      // migration bookkeeping ran once
      const versions = b.db.prepare('SELECT version FROM schema_version').all();
      assert.deepEqual(versions, Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })), 'one row per applied migration');
    } finally {
      b.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a store from a newer schema is refused with a clear message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-store-'));
  try {
    const path = join(dir, 'qslab.db');
    openStore(path).close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(SCHEMA_VERSION + 1, 'later');
    raw.close();
    assert.throws(() => openStore(path), new RegExp(`schema_version ${SCHEMA_VERSION + 1} is newer than this controller supports \\(${SCHEMA_VERSION}\\)`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a throw in the middle of a batch rolls back that batch only', () => {
  const store = openStore(':memory:');
  try {
    store.beginRun(run('r1', '2026-11-26T10:00:00.000Z'));
    const first = [op('r1', 'c1', 0), op('r1', 'c1', 1), op('r1', 'c1', 2)];
    store.addOps(first);
    const poisoned = op('r1', 'c1', 4);
    Object.defineProperty(poisoned, 't', { get() { throw new Error('boom mid-batch'); }, enumerable: true });
    assert.throws(() => store.addOps([op('r1', 'c1', 3), poisoned, op('r1', 'c1', 5)]), /boom mid-batch/);
    assert.deepEqual(store.getOps('r1'), first);
    // the store stays usable
    store.addOps([op('r1', 'c1', 3)]);
    assert.equal(store.getOps('r1').length, 4);
  } finally {
    store.close();
  }
});

test('sqlite: a process killed (SIGKILL) inside a batch keeps every earlier batch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-store-'));
  try {
    const path = join(dir, 'crash.db');
    const storeModule = new URL('../store/sqlite.js', import.meta.url).href;
    const script = `
      import { openStore } from ${JSON.stringify(storeModule)};
      const store = openStore(${JSON.stringify(path)});
      store.beginRun(${JSON.stringify(run('r1', '2026-11-26T10:00:00.000Z'))});
      const op = (i) => (${JSON.stringify(op('r1', 'c1', 0))});
      const mk = (i) => ({ ...op(), index: i, ts: 1000 + i });
      for (let b = 0; b < 3; b++) store.addOps(Array.from({ length: 100 }, (_, k) => mk(b * 100 + k)));
      const bomb = mk(999);
      Object.defineProperty(bomb, 't', { get() { process.kill(process.pid, 'SIGKILL'); return {}; } });
      store.addOps([...Array.from({ length: 50 }, (_, k) => mk(300 + k)), bomb]);
      process.stdout.write('not reached');
    `;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(res.signal, 'SIGKILL', `child should die by SIGKILL; stderr: ${res.stderr}`);
    assert.equal(res.stdout, '');
    const store = openStore(path);
    try {
      const ops = store.getOps('r1');
      assert.equal(ops.length, 300);
      assert.deepEqual(ops.map((o) => o.index), Array.from({ length: 300 }, (_, k) => k));
      assert.equal(store.getRun('r1')?.status, 'running');
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a v1 store is migrated to the current schema and keeps its ops; QKD key ids and energy windows round-trip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-migrate-'));
  const path = join(dir, 'v1.db');
  try {
    // Make a v1 store: today's schema with the v2 and v3 steps undone, holding one op.
    const s0 = openStore(path);
    s0.beginRun(run('old', '2026-11-25T00:00:00Z'));
    s0.addOps([op('old', 'c0', 0)]);
    s0.close();
    const raw = new Database(path);
    raw.exec('DROP TABLE energy; DROP TABLE traces; ALTER TABLE ops DROP COLUMN key_ids; DELETE FROM schema_version WHERE version >= 2;');
    raw.close();

    const s = openStore(path);
    assert.equal(s.schemaVersion(), SCHEMA_VERSION);
    assert.equal(s.getOps('old').length, 1, 'ops written before the migration are kept');
    assert.equal(s.getOps('old')[0]!.keyIds, undefined);
    s.beginRun(run('mig', '2026-11-26T00:00:00Z'));
    const withIds = op('mig', 'c1', 0, { keyIds: ['3f1c2b4a-0000-4000-8000-000000000001', '3f1c2b4a-0000-4000-8000-000000000002'] });
    s.addOps([withIds, op('mig', 'c1', 1)]);
    const got = s.getOps('mig');
    assert.deepEqual(got[0]!.keyIds, withIds.keyIds);
    // v3: energy windows and raw traces round-trip (traces as float64 BLOBs)
    const w = {
      runId: 'mig', cellId: 'c1', node: 'n', board: 'esp32', suite: 'x25519', profile: 'loopback', meter: 'ppk2-a', meterKind: 'ppk2',
      t0: 1000.25, t1: 2000.5, b0: 500, b1: 999, source: 'marker' as const, ops: 50, samples: 100000, grossJ: 0.5, baselineW: 0.25, netJ: 0.2495,
      perOpJ: 0.00499, perOpUncJ: 0.00001, drainPct100: 0.0021, truthPerOpJ: 0.00498,
    };
    s.addEnergy(w);
    assert.deepEqual(s.getEnergy('mig'), [w]);
    const tr = { runId: 'mig', cellId: 'c1', meter: 'ppk2-a', node: 'n', t: Float64Array.from([1, 2.5]), v: Float64Array.from([5, 5.01]), i: Float64Array.from([0.05, 0.0612345]) };
    s.addTrace(tr);
    const [back] = s.getTraces('mig', 'c1');
    assert.deepEqual([...back!.i], [...tr.i]);
    assert.deepEqual([...back!.t], [...tr.t]);
    assert.equal(back!.d, undefined);
    assert.equal(got[1]!.keyIds, undefined);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
