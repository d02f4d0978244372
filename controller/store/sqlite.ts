// The local embedded store (DESIGN.md §6): always written, the source of truth for reports.
// better-sqlite3, WAL journal, versioned schema (see SCHEMA.md). Every write is one transaction, so a crash
// in the middle of a batch loses that batch only, never earlier data.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CellInfo, EnergyWindow, NetDirection, NetFigures, OpRecord, QkdSweepPoint, RunEvent, RunInfo, RunStatus, SampleTrace, Store } from '../model.js';

/** Schema version this code writes. Migrations below bring older files up to it. */
export const SCHEMA_VERSION = 4;

/** MIGRATIONS[i] takes a store from version i to version i + 1. Never edit a shipped entry; append. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    id                 TEXT PRIMARY KEY,
    campaign           TEXT NOT NULL,
    campaign_file      TEXT NOT NULL,
    campaign_text      TEXT NOT NULL,
    rig                TEXT NOT NULL,
    rig_file           TEXT NOT NULL,
    rig_text           TEXT NOT NULL,
    controller_version TEXT NOT NULL,
    git_commit         TEXT NOT NULL,
    seed               INTEGER NOT NULL,
    virtual            INTEGER NOT NULL,          -- 0 | 1
    virtual_parts      TEXT NOT NULL,             -- JSON array of strings
    started_at         TEXT NOT NULL,             -- ISO 8601
    ended_at           TEXT,
    status             TEXT NOT NULL
  );
  CREATE INDEX runs_started ON runs(started_at);

  CREATE TABLE cells (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id    TEXT NOT NULL,
    node       TEXT NOT NULL,
    board      TEXT NOT NULL,
    build_hash TEXT NOT NULL,
    firmware   TEXT NOT NULL,
    suite      TEXT NOT NULL,
    profile    TEXT NOT NULL,
    aead       TEXT NOT NULL,
    records    INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    refresh    INTEGER NOT NULL,
    repetition INTEGER NOT NULL,
    ops        INTEGER NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT,
    started_at TEXT,
    ended_at   TEXT,
    PRIMARY KEY (run_id, cell_id)
  );

  CREATE TABLE ops (
    id      INTEGER PRIMARY KEY,               -- insertion order
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL,
    node    TEXT NOT NULL,
    board   TEXT NOT NULL,
    suite   TEXT NOT NULL,
    profile TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    ok      INTEGER NOT NULL,                  -- 0 | 1
    err     TEXT,
    msg     TEXT,
    t       TEXT NOT NULL,                     -- JSON object {step: µs}
    hs_tx   INTEGER NOT NULL,
    hs_rx   INTEGER NOT NULL,
    rec_tx  INTEGER NOT NULL,
    rec_rx  INTEGER NOT NULL,
    recs    INTEGER NOT NULL,
    heap    INTEGER NOT NULL,
    stack   INTEGER NOT NULL,
    cpu     REAL NOT NULL,
    host_us REAL,
    ts      INTEGER NOT NULL                   -- ms since epoch
  );
  CREATE INDEX ops_run_cell ON ops(run_id, cell_id, attempt, idx);

  CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ts      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    node    TEXT,
    cell_id TEXT,
    detail  TEXT NOT NULL
  );
  CREATE INDEX events_run ON events(run_id, ts);
  `,
  // v2: ids of the QKD keys an operation used (JSON array of key_IDs; never key material).
  `ALTER TABLE ops ADD COLUMN key_ids TEXT;`,
  // v3: energy windows (one per measured burst) and the raw meter samples around them (little-endian float64 /
  // uint8 arrays as BLOBs; InfluxDB only ever gets them downsampled).
  `
  CREATE TABLE energy (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id     TEXT NOT NULL,
    node        TEXT NOT NULL,
    board       TEXT NOT NULL,
    suite       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    meter       TEXT NOT NULL,
    meter_kind  TEXT NOT NULL,
    t0 REAL NOT NULL, t1 REAL NOT NULL, b0 REAL NOT NULL, b1 REAL NOT NULL,
    source      TEXT NOT NULL,
    clock_err_ms REAL,
    ops         INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    gross_j REAL NOT NULL, baseline_w REAL NOT NULL, net_j REAL NOT NULL, per_op_j REAL NOT NULL,
    per_op_unc_j REAL NOT NULL, drain_pct_100 REAL, truth_per_op_j REAL
  );
  CREATE INDEX energy_run ON energy(run_id, cell_id);
  CREATE TABLE traces (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL,
    meter   TEXT NOT NULL,
    node    TEXT NOT NULL,
    n       INTEGER NOT NULL,
    t BLOB NOT NULL, v BLOB NOT NULL, i BLOB NOT NULL, d BLOB
  );
  CREATE INDEX traces_run ON traces(run_id, cell_id);
  `,
  // v4: realized network figures per cell attempt through the impairment relay, and the QKD link sweep of a run.
  // (IF NOT EXISTS: a store whose earlier steps were undone by hand keeps a v4 table it already has.)
  `
  CREATE TABLE IF NOT EXISTS net (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    node        TEXT NOT NULL,
    suite       TEXT NOT NULL,
    profile     TEXT NOT NULL,
    backend     TEXT NOT NULL,                -- relay | kernel
    shaping     TEXT,
    cfg_delay_ms REAL, cfg_jitter_ms REAL, cfg_loss_model TEXT, cfg_loss_pct REAL, cfg_rate_kbit REAL,
    bursts      INTEGER NOT NULL,
    flows       INTEGER NOT NULL,
    resets      INTEGER NOT NULL,
    up_packets INTEGER NOT NULL, up_lost INTEGER NOT NULL, up_loss REAL NOT NULL, up_delay_mean_ms REAL NOT NULL,
    up_delay_sd_ms REAL NOT NULL, up_throughput_kbit REAL NOT NULL, up_retransmitted INTEGER NOT NULL,
    down_packets INTEGER NOT NULL, down_lost INTEGER NOT NULL, down_loss REAL NOT NULL, down_delay_mean_ms REAL NOT NULL,
    down_delay_sd_ms REAL NOT NULL, down_throughput_kbit REAL NOT NULL, down_retransmitted INTEGER NOT NULL,
    kernel_loss_up REAL, kernel_loss_down REAL, kernel_packets_up INTEGER, kernel_packets_down INTEGER,
    rtt_n INTEGER, rtt_sockets INTEGER, rtt_median_ms REAL, rtt_p5_ms REAL, rtt_p95_ms REAL, rtt_retrans INTEGER,
    tcp_out_segs INTEGER, tcp_retrans_segs INTEGER,
    ts          INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS net_run ON net(run_id, cell_id, attempt);
  CREATE TABLE IF NOT EXISTS qkd_sweep (
    id                  INTEGER PRIMARY KEY,
    run_id              TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    protocol            TEXT NOT NULL,
    distance_km         REAL NOT NULL,
    repeat              INTEGER NOT NULL,
    seed                INTEGER NOT NULL,
    block_bits          INTEGER NOT NULL,
    qber                REAL,                 -- NULL when not defined (no sifted bits)
    secret_key_rate_bps REAL NOT NULL,
    final_bits          INTEGER NOT NULL,
    sifted_bits         INTEGER NOT NULL,
    duration_s          REAL NOT NULL,
    abort_reason        TEXT
  );
  CREATE INDEX IF NOT EXISTS qkd_sweep_run ON qkd_sweep(run_id, protocol, distance_km, repeat);
  -- a run's operations in insertion order without a sort (reports read a million of them)
  CREATE INDEX IF NOT EXISTS ops_run_id ON ops(run_id, id);
  `,
];

interface RunRow {
  id: string; campaign: string; campaign_file: string; campaign_text: string; rig: string; rig_file: string;
  rig_text: string; controller_version: string; git_commit: string; seed: number; virtual: number;
  virtual_parts: string; started_at: string; ended_at: string | null; status: string;
}
interface CellRow {
  run_id: string; cell_id: string; node: string; board: string; build_hash: string; firmware: string; suite: string;
  profile: string; aead: string; records: number; bytes: number; refresh: number; repetition: number; ops: number;
  status: string; attempts: number; error: string | null; started_at: string | null; ended_at: string | null;
}
interface EventRow { run_id: string; ts: number; kind: string; node: string | null; cell_id: string | null; detail: string }

function runFromRow(r: RunRow): RunInfo {
  const run: RunInfo = {
    id: r.id, campaign: r.campaign, campaignFile: r.campaign_file, campaignText: r.campaign_text, rig: r.rig,
    rigFile: r.rig_file, rigText: r.rig_text, controllerVersion: r.controller_version, gitCommit: r.git_commit,
    seed: r.seed, virtual: r.virtual !== 0, virtualParts: JSON.parse(r.virtual_parts) as string[],
    startedAt: r.started_at, status: r.status as RunStatus,
  };
  if (r.ended_at !== null) run.endedAt = r.ended_at;
  return run;
}

function cellFromRow(r: CellRow): CellInfo {
  const c: CellInfo = {
    runId: r.run_id, cellId: r.cell_id, node: r.node, board: r.board, buildHash: r.build_hash, firmware: r.firmware,
    suite: r.suite, profile: r.profile, aead: r.aead, records: r.records, bytes: r.bytes, refresh: r.refresh,
    repetition: r.repetition, ops: r.ops, status: r.status as CellInfo['status'], attempts: r.attempts,
  };
  if (r.error !== null) c.error = r.error;
  if (r.started_at !== null) c.startedAt = r.started_at;
  if (r.ended_at !== null) c.endedAt = r.ended_at;
  return c;
}

const OP_COLUMNS = ['run_id', 'cell_id', 'node', 'board', 'suite', 'profile', 'attempt', 'idx', 'ok', 'err', 'msg', 't', 'hs_tx', 'hs_rx', 'rec_tx', 'rec_rx',
  'recs', 'heap', 'stack', 'cpu', 'host_us', 'ts', 'key_ids'] as const;

function opFromRaw(r: unknown[], intern: Map<string, string>): OpRecord {
  const str = (i: number): string => {
    const s = r[i] as string;
    const hit = intern.get(s);
    if (hit !== undefined) return hit;
    intern.set(s, s);
    return s;
  };
  const op: OpRecord = {
    runId: str(0), cellId: str(1), node: str(2), board: str(3), suite: str(4), profile: str(5),
    attempt: r[6] as number, index: r[7] as number, ok: r[8] !== 0, t: JSON.parse(r[11] as string) as Record<string, number>,
    hsTx: r[12] as number, hsRx: r[13] as number, recTx: r[14] as number, recRx: r[15] as number, recs: r[16] as number,
    heap: r[17] as number, stack: r[18] as number, cpu: r[19] as number, ts: r[21] as number,
  };
  if (r[9] !== null) op.err = r[9] as string;
  if (r[10] !== null) op.msg = r[10] as string;
  if (r[20] !== null) op.hostUs = r[20] as number;
  if (r[22] !== null) op.keyIds = JSON.parse(r[22] as string) as string[];
  return op;
}


function eventFromRow(r: EventRow): RunEvent {
  const ev: RunEvent = { runId: r.run_id, ts: r.ts, kind: r.kind, detail: r.detail };
  if (r.node !== null) ev.node = r.node;
  if (r.cell_id !== null) ev.cellId = r.cell_id;
  return ev;
}

/** Applies pending migrations; refuses a store written by a newer controller. Returns the version now in place. */
function migrate(db: Database.Database, path: string): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `store ${path}: schema_version ${current} is newer than this controller supports (${SCHEMA_VERSION}); ` +
        'upgrade qslab or use another store path',
    );
  }
  const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      record.run(v + 1, new Date().toISOString());
    })();
  }
  return SCHEMA_VERSION;
}

function prepare(db: Database.Database) {
  return {
    upsertRun: db.prepare(`
      INSERT INTO runs (id, campaign, campaign_file, campaign_text, rig, rig_file, rig_text, controller_version,
                        git_commit, seed, virtual, virtual_parts, started_at, ended_at, status)
      VALUES (@id, @campaign, @campaign_file, @campaign_text, @rig, @rig_file, @rig_text, @controller_version,
              @git_commit, @seed, @virtual, @virtual_parts, @started_at, @ended_at, @status)
      ON CONFLICT(id) DO UPDATE SET
        campaign = excluded.campaign, campaign_file = excluded.campaign_file, campaign_text = excluded.campaign_text,
        rig = excluded.rig, rig_file = excluded.rig_file, rig_text = excluded.rig_text,
        controller_version = excluded.controller_version, git_commit = excluded.git_commit, seed = excluded.seed,
        virtual = excluded.virtual, virtual_parts = excluded.virtual_parts, started_at = excluded.started_at,
        ended_at = excluded.ended_at, status = excluded.status`),
    endRun: db.prepare('UPDATE runs SET status = ?, ended_at = ? WHERE id = ?'),
    upsertCell: db.prepare(`
      INSERT INTO cells (run_id, cell_id, node, board, build_hash, firmware, suite, profile, aead, records, bytes,
                         refresh, repetition, ops, status, attempts, error, started_at, ended_at)
      VALUES (@run_id, @cell_id, @node, @board, @build_hash, @firmware, @suite, @profile, @aead, @records, @bytes,
              @refresh, @repetition, @ops, @status, @attempts, @error, @started_at, @ended_at)
      ON CONFLICT(run_id, cell_id) DO UPDATE SET
        node = excluded.node, board = excluded.board, build_hash = excluded.build_hash, firmware = excluded.firmware,
        suite = excluded.suite, profile = excluded.profile, aead = excluded.aead, records = excluded.records,
        bytes = excluded.bytes, refresh = excluded.refresh, repetition = excluded.repetition, ops = excluded.ops,
        status = excluded.status, attempts = excluded.attempts, error = excluded.error,
        started_at = excluded.started_at, ended_at = excluded.ended_at`),
    insertOp: db.prepare(`
      INSERT INTO ops (run_id, cell_id, node, board, suite, profile, attempt, idx, ok, err, msg, t, hs_tx, hs_rx,
                       rec_tx, rec_rx, recs, heap, stack, cpu, host_us, ts, key_ids)
      VALUES (@run_id, @cell_id, @node, @board, @suite, @profile, @attempt, @idx, @ok, @err, @msg, @t, @hs_tx,
              @hs_rx, @rec_tx, @rec_rx, @recs, @heap, @stack, @cpu, @host_us, @ts, @key_ids)`),
    insertEvent: db.prepare(
      'INSERT INTO events (run_id, ts, kind, node, cell_id, detail) VALUES (@run_id, @ts, @kind, @node, @cell_id, @detail)',
    ),
    listRuns: db.prepare('SELECT * FROM runs ORDER BY started_at, rowid'),
    getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
    latestRun: db.prepare('SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1'),
    getCells: db.prepare('SELECT * FROM cells WHERE run_id = ? ORDER BY rowid'),
    // raw rows (arrays) in this column order: opFromRaw reads them by position
    getOps: db.prepare(`SELECT ${OP_COLUMNS.join(', ')} FROM ops INDEXED BY ops_run_id WHERE run_id = ? ORDER BY id`).raw(),
    getEvents: db.prepare('SELECT * FROM events WHERE run_id = ? ORDER BY id'),
    insertEnergy: db.prepare(`
      INSERT INTO energy (run_id, cell_id, node, board, suite, profile, meter, meter_kind, t0, t1, b0, b1, source,
                          clock_err_ms, ops, samples, gross_j, baseline_w, net_j, per_op_j, per_op_unc_j,
                          drain_pct_100, truth_per_op_j)
      VALUES (@run_id, @cell_id, @node, @board, @suite, @profile, @meter, @meter_kind, @t0, @t1, @b0, @b1, @source,
              @clock_err_ms, @ops, @samples, @gross_j, @baseline_w, @net_j, @per_op_j, @per_op_unc_j,
              @drain_pct_100, @truth_per_op_j)`),
    getEnergy: db.prepare('SELECT * FROM energy WHERE run_id = ? ORDER BY id'),
    insertTrace: db.prepare('INSERT INTO traces (run_id, cell_id, meter, node, n, t, v, i, d) VALUES (@run_id, @cell_id, @meter, @node, @n, @t, @v, @i, @d)'),
    getTraces: db.prepare('SELECT * FROM traces WHERE run_id = ? ORDER BY id'),
    getCellTraces: db.prepare('SELECT * FROM traces WHERE run_id = ? AND cell_id = ? ORDER BY id'),
    insertNet: db.prepare(`
      INSERT INTO net (run_id, cell_id, attempt, node, suite, profile, backend, shaping, cfg_delay_ms, cfg_jitter_ms,
                       cfg_loss_model, cfg_loss_pct, cfg_rate_kbit, bursts, flows, resets,
                       up_packets, up_lost, up_loss, up_delay_mean_ms, up_delay_sd_ms, up_throughput_kbit, up_retransmitted,
                       down_packets, down_lost, down_loss, down_delay_mean_ms, down_delay_sd_ms, down_throughput_kbit,
                       down_retransmitted, kernel_loss_up, kernel_loss_down, kernel_packets_up, kernel_packets_down,
                       rtt_n, rtt_sockets, rtt_median_ms, rtt_p5_ms, rtt_p95_ms, rtt_retrans, tcp_out_segs, tcp_retrans_segs, ts)
      VALUES (@run_id, @cell_id, @attempt, @node, @suite, @profile, @backend, @shaping, @cfg_delay_ms, @cfg_jitter_ms,
              @cfg_loss_model, @cfg_loss_pct, @cfg_rate_kbit, @bursts, @flows, @resets,
              @up_packets, @up_lost, @up_loss, @up_delay_mean_ms, @up_delay_sd_ms, @up_throughput_kbit, @up_retransmitted,
              @down_packets, @down_lost, @down_loss, @down_delay_mean_ms, @down_delay_sd_ms, @down_throughput_kbit,
              @down_retransmitted, @kernel_loss_up, @kernel_loss_down, @kernel_packets_up, @kernel_packets_down,
              @rtt_n, @rtt_sockets, @rtt_median_ms, @rtt_p5_ms, @rtt_p95_ms, @rtt_retrans, @tcp_out_segs, @tcp_retrans_segs, @ts)`),
    getNet: db.prepare('SELECT * FROM net WHERE run_id = ? ORDER BY id'),
    insertQkdSweep: db.prepare(`
      INSERT INTO qkd_sweep (run_id, protocol, distance_km, repeat, seed, block_bits, qber, secret_key_rate_bps,
                             final_bits, sifted_bits, duration_s, abort_reason)
      VALUES (@run_id, @protocol, @distance_km, @repeat, @seed, @block_bits, @qber, @secret_key_rate_bps,
              @final_bits, @sifted_bits, @duration_s, @abort_reason)`),
    getQkdSweep: db.prepare('SELECT * FROM qkd_sweep WHERE run_id = ? ORDER BY id'),
  };
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  readonly path: string;
  private readonly st: ReturnType<typeof prepare>;
  private readonly insertOps: (ops: OpRecord[]) => void;
  private readonly insertEvents: (evs: RunEvent[]) => void;

  constructor(path: string) {
    this.path = path;
    const inMemory = path === ':memory:' || path === '';
    if (!inMemory && !path.startsWith('file:')) mkdirSync(dirname(resolve(path)), { recursive: true });
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL'); // with WAL: durable across process crashes, fast commits
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000'); // a report may read while a run writes
      migrate(this.db, path);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.st = prepare(this.db);
    this.insertOps = this.db.transaction((batch: OpRecord[]) => {
      for (const op of batch) this.st.insertOp.run(opParams(op));
    });
    this.insertEvents = this.db.transaction((batch: RunEvent[]) => {
      for (const ev of batch) this.st.insertEvent.run(eventParams(ev));
    });
  }

  /** Version of the schema in this file (after migration). */
  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number }).v;
  }

  beginRun(run: RunInfo): void {
    this.st.upsertRun.run({
      id: run.id, campaign: run.campaign, campaign_file: run.campaignFile, campaign_text: run.campaignText,
      rig: run.rig, rig_file: run.rigFile, rig_text: run.rigText, controller_version: run.controllerVersion,
      git_commit: run.gitCommit, seed: run.seed, virtual: run.virtual ? 1 : 0,
      virtual_parts: JSON.stringify(run.virtualParts), started_at: run.startedAt, ended_at: run.endedAt ?? null,
      status: run.status,
    });
  }

  endRun(runId: string, status: RunStatus, endedAt: string): void {
    const r = this.st.endRun.run(status, endedAt, runId);
    if (r.changes === 0) throw new Error(`store: endRun: no run with id ${runId}`);
  }

  upsertCell(cell: CellInfo): void {
    this.st.upsertCell.run({
      run_id: cell.runId, cell_id: cell.cellId, node: cell.node, board: cell.board, build_hash: cell.buildHash,
      firmware: cell.firmware, suite: cell.suite, profile: cell.profile, aead: cell.aead, records: cell.records,
      bytes: cell.bytes, refresh: cell.refresh, repetition: cell.repetition, ops: cell.ops, status: cell.status,
      attempts: cell.attempts, error: cell.error ?? null, started_at: cell.startedAt ?? null,
      ended_at: cell.endedAt ?? null,
    });
  }

  /** All ops of one call land in one transaction: all or none. */
  addOps(ops: OpRecord[]): void {
    if (ops.length === 0) return;
    this.insertOps(ops);
  }

  addEvent(ev: RunEvent): void {
    this.st.insertEvent.run(eventParams(ev));
  }

  /** Several events in one transaction. */
  addEvents(evs: RunEvent[]): void {
    if (evs.length === 0) return;
    this.insertEvents(evs);
  }

  listRuns(): RunInfo[] {
    return (this.st.listRuns.all() as RunRow[]).map(runFromRow);
  }

  getRun(runId: string): RunInfo | undefined {
    const r = this.st.getRun.get(runId) as RunRow | undefined;
    return r ? runFromRow(r) : undefined;
  }

  latestRun(): RunInfo | undefined {
    const r = this.st.latestRun.get() as RunRow | undefined;
    return r ? runFromRow(r) : undefined;
  }

  getCells(runId: string): CellInfo[] {
    return (this.st.getCells.all(runId) as CellRow[]).map(cellFromRow);
  }

  getOps(runId: string): OpRecord[] {
    // Iterated, not .all(): a million rows as objects first and records second would double the garbage; the
    // repeated strings (run, cell, node, board, suite, profile) are shared, not copied per row.
    const out: OpRecord[] = [];
    const intern = new Map<string, string>();
    for (const r of this.st.getOps.iterate(runId) as IterableIterator<unknown[]>) out.push(opFromRaw(r, intern));
    return out;
  }

  getEvents(runId: string): RunEvent[] {
    return (this.st.getEvents.all(runId) as EventRow[]).map(eventFromRow);
  }

  addEnergy(w: EnergyWindow): void {
    this.st.insertEnergy.run({
      run_id: w.runId, cell_id: w.cellId, node: w.node, board: w.board, suite: w.suite, profile: w.profile, meter: w.meter,
      meter_kind: w.meterKind, t0: w.t0, t1: w.t1, b0: w.b0, b1: w.b1, source: w.source, clock_err_ms: w.clockErrMs ?? null,
      ops: w.ops, samples: w.samples, gross_j: w.grossJ, baseline_w: w.baselineW, net_j: w.netJ, per_op_j: w.perOpJ,
      per_op_unc_j: w.perOpUncJ, drain_pct_100: w.drainPct100 ?? null, truth_per_op_j: w.truthPerOpJ ?? null,
    });
  }

  getEnergy(runId: string): EnergyWindow[] {
    return (this.st.getEnergy.all(runId) as EnergyRow[]).map((r) => {
      const w: EnergyWindow = {
        runId: r.run_id, cellId: r.cell_id, node: r.node, board: r.board, suite: r.suite, profile: r.profile, meter: r.meter,
        meterKind: r.meter_kind, t0: r.t0, t1: r.t1, b0: r.b0, b1: r.b1, source: r.source as EnergyWindow['source'], ops: r.ops,
        samples: r.samples, grossJ: r.gross_j, baselineW: r.baseline_w, netJ: r.net_j, perOpJ: r.per_op_j, perOpUncJ: r.per_op_unc_j,
      };
      if (r.clock_err_ms !== null) w.clockErrMs = r.clock_err_ms;
      if (r.drain_pct_100 !== null) w.drainPct100 = r.drain_pct_100;
      if (r.truth_per_op_j !== null) w.truthPerOpJ = r.truth_per_op_j;
      return w;
    });
  }

  addTrace(tr: SampleTrace): void {
    const blob = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    this.st.insertTrace.run({
      run_id: tr.runId, cell_id: tr.cellId, meter: tr.meter, node: tr.node, n: tr.t.length,
      t: blob(tr.t), v: blob(tr.v), i: blob(tr.i), d: tr.d ? blob(tr.d) : null,
    });
  }

  getTraces(runId: string, cellId?: string): SampleTrace[] {
    const rows = (cellId === undefined ? this.st.getTraces.all(runId) : this.st.getCellTraces.all(runId, cellId)) as TraceRow[];
    const f64 = (b: Buffer) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    return rows.map((r) => {
      const tr: SampleTrace = { runId: r.run_id, cellId: r.cell_id, meter: r.meter, node: r.node, t: f64(r.t), v: f64(r.v), i: f64(r.i) };
      if (r.d) tr.d = new Uint8Array(r.d);
      return tr;
    });
  }

  /** Realized network figures of one cell attempt (one row). */
  addNet(n: NetFigures): void {
    const dir = (k: 'up' | 'down', d: NetDirection) => ({
      [`${k}_packets`]: d.packets, [`${k}_lost`]: d.lost, [`${k}_loss`]: d.loss, [`${k}_delay_mean_ms`]: d.delayMeanMs,
      [`${k}_delay_sd_ms`]: d.delaySdMs, [`${k}_throughput_kbit`]: d.throughputKbit, [`${k}_retransmitted`]: d.retransmitted,
    });
    this.st.insertNet.run({
      run_id: n.runId, cell_id: n.cellId, attempt: n.attempt, node: n.node, suite: n.suite, profile: n.profile,
      backend: n.backend, shaping: n.shaping ?? null,
      cfg_delay_ms: n.configured?.delayMs ?? null, cfg_jitter_ms: n.configured?.jitterMs ?? null,
      cfg_loss_model: n.configured?.lossModel ?? null, cfg_loss_pct: n.configured?.lossPct ?? null,
      cfg_rate_kbit: n.configured?.rateKbit ?? null,
      bursts: n.bursts, flows: n.flows, resets: n.resets, ...dir('up', n.up), ...dir('down', n.down),
      kernel_loss_up: n.kernel?.lossUp ?? null, kernel_loss_down: n.kernel?.lossDown ?? null,
      kernel_packets_up: n.kernel?.packetsUp ?? null, kernel_packets_down: n.kernel?.packetsDown ?? null,
      rtt_n: n.rtt?.n ?? null, rtt_sockets: n.rtt?.sockets ?? null, rtt_median_ms: n.rtt?.medianMs ?? null,
      rtt_p5_ms: n.rtt?.p5Ms ?? null, rtt_p95_ms: n.rtt?.p95Ms ?? null, rtt_retrans: n.rtt?.retrans ?? null,
      tcp_out_segs: n.tcp?.outSegs ?? null, tcp_retrans_segs: n.tcp?.retransSegs ?? null, ts: n.ts,
    });
  }

  getNet(runId: string): NetFigures[] {
    return (this.st.getNet.all(runId) as NetRow[]).map((r) => {
      const dir = (k: 'up' | 'down'): NetDirection => ({
        packets: r[`${k}_packets`], lost: r[`${k}_lost`], loss: r[`${k}_loss`], delayMeanMs: r[`${k}_delay_mean_ms`],
        delaySdMs: r[`${k}_delay_sd_ms`], throughputKbit: r[`${k}_throughput_kbit`], retransmitted: r[`${k}_retransmitted`],
      });
      const n: NetFigures = {
        runId: r.run_id, cellId: r.cell_id, attempt: r.attempt, node: r.node, suite: r.suite, profile: r.profile,
        backend: r.backend as NetFigures['backend'], bursts: r.bursts, flows: r.flows, resets: r.resets,
        up: dir('up'), down: dir('down'), ts: r.ts,
      };
      if (r.shaping !== null) n.shaping = r.shaping;
      if (r.cfg_delay_ms !== null) {
        n.configured = { delayMs: r.cfg_delay_ms, jitterMs: r.cfg_jitter_ms ?? 0, lossModel: r.cfg_loss_model ?? 'none', rateKbit: r.cfg_rate_kbit ?? 0 };
        if (r.cfg_loss_pct !== null) n.configured.lossPct = r.cfg_loss_pct;
      }
      if (r.kernel_loss_up !== null) {
        n.kernel = { lossUp: r.kernel_loss_up, lossDown: r.kernel_loss_down ?? 0, packetsUp: r.kernel_packets_up ?? 0, packetsDown: r.kernel_packets_down ?? 0 };
      }
      if (r.rtt_n !== null) {
        n.rtt = { n: r.rtt_n, sockets: r.rtt_sockets ?? 0, medianMs: r.rtt_median_ms ?? NaN, p5Ms: r.rtt_p5_ms ?? NaN, p95Ms: r.rtt_p95_ms ?? NaN, retrans: r.rtt_retrans ?? 0 };
      }
      if (r.tcp_out_segs !== null) n.tcp = { outSegs: r.tcp_out_segs, retransSegs: r.tcp_retrans_segs ?? 0 };
      return n;
    });
  }

  /** One simulated link of the run's QKD sweep. */
  addQkdSweep(p: QkdSweepPoint): void {
    this.st.insertQkdSweep.run({
      run_id: p.runId, protocol: p.protocol, distance_km: p.distanceKm, repeat: p.repeat, seed: p.seed, block_bits: p.blockBits,
      qber: Number.isFinite(p.qber) ? p.qber : null, secret_key_rate_bps: p.secretKeyRateBps, final_bits: p.finalBits,
      sifted_bits: p.siftedBits, duration_s: p.durationS, abort_reason: p.abortReason ?? null,
    });
  }

  /** The run's QKD sweep in the order it ran (protocol, then distance, then repeat). */
  getQkdSweep(runId: string): QkdSweepPoint[] {
    return (this.st.getQkdSweep.all(runId) as QkdSweepRow[]).map((r) => {
      const p: QkdSweepPoint = {
        runId: r.run_id, protocol: r.protocol, distanceKm: r.distance_km, repeat: r.repeat, seed: r.seed, blockBits: r.block_bits,
        qber: r.qber ?? NaN, secretKeyRateBps: r.secret_key_rate_bps, finalBits: r.final_bits, siftedBits: r.sifted_bits,
        durationS: r.duration_s,
      };
      if (r.abort_reason !== null) p.abortReason = r.abort_reason;
      return p;
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

type NetDirRow<K extends string> = {
  [P in `${K}_packets` | `${K}_lost` | `${K}_loss` | `${K}_delay_mean_ms` | `${K}_delay_sd_ms` | `${K}_throughput_kbit` | `${K}_retransmitted`]: number;
};
type NetRow = NetDirRow<'up'> & NetDirRow<'down'> & {
  run_id: string; cell_id: string; attempt: number; node: string; suite: string; profile: string; backend: string;
  shaping: string | null; cfg_delay_ms: number | null; cfg_jitter_ms: number | null; cfg_loss_model: string | null;
  cfg_loss_pct: number | null; cfg_rate_kbit: number | null; bursts: number; flows: number; resets: number;
  kernel_loss_up: number | null; kernel_loss_down: number | null; kernel_packets_up: number | null; kernel_packets_down: number | null;
  rtt_n: number | null; rtt_sockets: number | null; rtt_median_ms: number | null; rtt_p5_ms: number | null; rtt_p95_ms: number | null;
  rtt_retrans: number | null; tcp_out_segs: number | null; tcp_retrans_segs: number | null; ts: number;
};
interface QkdSweepRow {
  run_id: string; protocol: string; distance_km: number; repeat: number; seed: number; block_bits: number; qber: number | null;
  secret_key_rate_bps: number; final_bits: number; sifted_bits: number; duration_s: number; abort_reason: string | null;
}

interface EnergyRow {
  run_id: string; cell_id: string; node: string; board: string; suite: string; profile: string; meter: string; meter_kind: string;
  t0: number; t1: number; b0: number; b1: number; source: string; clock_err_ms: number | null; ops: number; samples: number;
  gross_j: number; baseline_w: number; net_j: number; per_op_j: number; per_op_unc_j: number; drain_pct_100: number | null;
  truth_per_op_j: number | null;
}
interface TraceRow { run_id: string; cell_id: string; meter: string; node: string; n: number; t: Buffer; v: Buffer; i: Buffer; d: Buffer | null }

function opParams(op: OpRecord) {
  return {
    run_id: op.runId, cell_id: op.cellId, node: op.node, board: op.board, suite: op.suite, profile: op.profile,
    attempt: op.attempt, idx: op.index, ok: op.ok ? 1 : 0, err: op.err ?? null, msg: op.msg ?? null,
    t: JSON.stringify(op.t), hs_tx: op.hsTx, hs_rx: op.hsRx, rec_tx: op.recTx, rec_rx: op.recRx, recs: op.recs,
    heap: op.heap, stack: op.stack, cpu: op.cpu, host_us: op.hostUs ?? null, ts: op.ts,
    key_ids: op.keyIds ? JSON.stringify(op.keyIds) : null,
  };
}

function eventParams(ev: RunEvent) {
  return {
    run_id: ev.runId, ts: ev.ts, kind: ev.kind, node: ev.node ?? null, cell_id: ev.cellId ?? null, detail: ev.detail,
  };
}

/**
 * Opens (creating if needed, with parent directories) the store at `path`; `:memory:` for a throwaway store.
 * Runs schema migrations; throws if the file was written by a newer schema.
 */
export function openStore(path: string): SqliteStore {
  return new SqliteStore(path);
}
