// InfluxDB sink (DESIGN.md §6): the same records as the local store, as line protocol, through the official
// client's WriteApi. Works with InfluxDB 2.x and with VictoriaMetrics (/api/v2/write, empty token).
//
// Delivery rule: every line ends up either confirmed written (HTTP 2xx seen in a write callback) or spooled to
// disk under `spoolDir` — never dropped. `WriteApi.close()` resolves even when every batch failed, so outcomes
// are counted from the `writeSuccess` / `writeFailed` callbacks only. `writeFailed` always takes the batch over
// (it returns a promise, so the client's own retry buffer — which silently discards its content on close() — is
// never used): a few quick retries, then the batch goes to one spool file. After one spooled batch the sink is
// "degraded": further failures are spooled at once, without retries, until a write succeeds again; an outage
// costs the run almost nothing. `pushSpool()` (`qslab push`) replays the spool later.
//
// Runtime methods never throw: a bad token, an unreachable URL or a full disk is reported through the counters
// and `onError`, never by an exception into the runner. Only a malformed config throws, in the constructor.
import { InfluxDB, HttpError, type WriteApi } from '@influxdata/influxdb-client';
import {
  closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CellInfo, EnergyWindow, OpRecord, RunEvent, RunInfo, RunStatus, SampleTrace } from '../model.js';

export interface InfluxConfig {
  url: string;                 // e.g. http://localhost:8086 (InfluxDB) or http://localhost:8428 (VictoriaMetrics)
  token: string;               // '' = no Authorization header (VictoriaMetrics)
  org: string;
  bucket: string;
  spoolDir: string;            // failed batches land here, one file each
  batchSize?: number;          // lines per write request (default 500)
  flushIntervalMs?: number;    // max time a line waits in the buffer (default 1000)
  maxRetries?: number;         // retries of a failed batch before it is spooled (default 2)
  retryDelayMs?: number;       // first retry delay, doubled per retry (default 200)
  timeoutMs?: number;          // per HTTP request (default 5000)
  /**
   * Write string fields (run_id, cell_id, err, msg, ...). Default true. VictoriaMetrics turns every string field
   * into a metric whose value is always 0, so set false there to avoid those useless series.
   */
  stringFields?: boolean;
  onError?: (message: string) => void; // diagnostics (default: silent; counters tell the story)
}

export interface InfluxCounters {
  written: number;         // lines confirmed written (2xx)
  failedBatches: number;   // batches that failed for good and were spooled
  spooledLines: number;    // lines in those batches
  retries: number;         // retry requests made
  lostLines: number;       // lines that could be neither written nor spooled (spool dir unwritable); must stay 0
}

export const MEASUREMENT = { op: 'qslab_op', cell: 'qslab_cell', event: 'qslab_event', run: 'qslab_run', energy: 'qslab_energy', power: 'qslab_power' } as const;
/** Timestamp precision of every line the sink writes and every spool file. */
export const PRECISION = 'ms' as const;
/** Points per downsampled power trace in InfluxDB. */
export const TRACE_POINTS = 200;
export const SPOOL_SUFFIX = '.lp';

// ---------------------------------------------------------------- line protocol

/** Escaping per the InfluxDB line protocol reference. */
export const lp = {
  measurement(s: string): string {
    return s.replace(/[\r\n\t]/g, ' ').replace(/[ ,]/g, (c) => '\\' + c);
  },
  /** Tag keys, tag values and field keys: escape space, comma, equals; no newlines possible. */
  key(s: string): string {
    let out = s.replace(/[\r\n\t]/g, ' ').replace(/[ ,=]/g, (c) => '\\' + c);
    // A trailing backslash would escape the separator that follows; double it so the line still parses.
    if (out.endsWith('\\') && !out.endsWith('\\\\')) out += '\\';
    return out;
  },
  /** String field value: quoted, with " and \ escaped; newlines become a literal "\n" (two characters). */
  str(s: string): string {
    return '"' + s.replace(/[\\"]/g, (c) => '\\' + c).replace(/\r\n|\r|\n/g, '\\n') + '"';
  },
  float(v: number): string {
    return String(v); // JS number formatting (incl. 1e+21) is valid line protocol float syntax
  },
  int(v: number): string {
    return String(Math.round(v)) + 'i';
  },
};

type FieldValue = { kind: 'f' | 'i' | 's' | 'b'; v: number | string | boolean };
type Fields = Array<[string, FieldValue]>;

/** Bounded tag values only (campaign, rig, node, board, suite, profile, kind): never ids. */
export type Tags = Record<string, string | undefined>;

const f = (v: number): FieldValue => ({ kind: 'f', v });
const i = (v: number): FieldValue => ({ kind: 'i', v });
const s = (v: string): FieldValue => ({ kind: 's', v });

/** Field keys used as metric names downstream: keep them to [A-Za-z0-9_]. */
export function fieldName(step: string): string {
  return step.replace(/[^A-Za-z0-9_]/g, '_');
}

/**
 * One line, or undefined when no field survives (every value non-finite). Tags are sorted (InfluxDB's
 * preferred order) and empty tag values omitted (line protocol does not allow them).
 */
export function formatLine(measurement: string, tags: Tags, fields: Fields, tsMs: number, stringFields = true): string | undefined {
  const parts: string[] = [];
  for (const [k, fv] of fields) {
    switch (fv.kind) {
      case 'f':
      case 'i': {
        const n = fv.v as number;
        if (!Number.isFinite(n)) continue;
        parts.push(`${lp.key(k)}=${fv.kind === 'f' ? lp.float(n) : lp.int(n)}`);
        break;
      }
      case 'b':
        parts.push(`${lp.key(k)}=${fv.v ? 'true' : 'false'}`);
        break;
      case 's':
        if (stringFields) parts.push(`${lp.key(k)}=${lp.str(fv.v as string)}`);
        break;
    }
  }
  if (parts.length === 0) return undefined;
  return `${seriesKey(measurement, tags)} ${parts.join(',')} ${Math.floor(tsMs)}`;
}

function seriesKey(measurement: string, tags: Tags): string {
  let key = lp.measurement(measurement);
  for (const k of Object.keys(tags).sort()) {
    const v = tags[k];
    if (v !== undefined && v !== '') key += `,${lp.key(k)}=${lp.key(v)}`;
  }
  return key;
}

interface RunCtx { campaign: string; rig: string }

function opTags(op: OpRecord, ctx: RunCtx | undefined): Tags {
  return { campaign: ctx?.campaign, rig: ctx?.rig, node: op.node, board: op.board, suite: op.suite, profile: op.profile };
}

function opFields(op: OpRecord): Fields {
  const out: Fields = [];
  for (const [step, us] of Object.entries(op.t)) out.push([`t_${fieldName(step)}_us`, f(us)]);
  out.push(
    ['hs_tx', i(op.hsTx)], ['hs_rx', i(op.hsRx)], ['rec_tx', i(op.recTx)], ['rec_rx', i(op.recRx)],
    ['recs', i(op.recs)], ['heap', i(op.heap)], ['stack', i(op.stack)], ['cpu', f(op.cpu)],
    ['ok', i(op.ok ? 1 : 0)], ['index', i(op.index)], ['attempt', i(op.attempt)],
  );
  if (op.hostUs !== undefined) out.push(['host_us', f(op.hostUs)]);
  out.push(['run_id', s(op.runId)], ['cell_id', s(op.cellId)]);
  if (op.err !== undefined) out.push(['err', s(op.err)]);
  if (op.msg !== undefined) out.push(['msg', s(op.msg)]);
  return out;
}

const CELL_STATUS_CODE: Record<CellInfo['status'], number> = { pending: 0, running: 1, ok: 2, failed: 3, skipped: 4 };
const RUN_STATUS_CODE: Record<RunStatus, number> = { running: 0, completed: 1, interrupted: 2, failed: 3 };

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function cellFields(cell: CellInfo, ops: OpRecord[] | undefined): Fields {
  const out: Fields = [
    ['records', i(cell.records)], ['bytes', i(cell.bytes)], ['refresh', i(cell.refresh)],
    ['repetition', i(cell.repetition)], ['ops', i(cell.ops)], ['attempts', i(cell.attempts)],
    ['status_code', i(CELL_STATUS_CODE[cell.status] ?? -1)], ['ok', i(cell.status === 'ok' ? 1 : 0)],
  ];
  const start = cell.startedAt ? Date.parse(cell.startedAt) : NaN;
  const end = cell.endedAt ? Date.parse(cell.endedAt) : NaN;
  if (Number.isFinite(start) && Number.isFinite(end)) out.push(['duration_ms', i(end - start)]);
  if (ops && ops.length > 0) {
    const good = ops.filter((o) => o.ok);
    out.push(['ops_ok', i(good.length)], ['ops_failed', i(ops.length - good.length)]);
    const steps = new Set<string>();
    for (const o of good) for (const k of Object.keys(o.t)) steps.add(k);
    for (const step of steps) {
      const v = good.map((o) => o.t[step]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      if (v.length === 0) continue;
      v.sort((a, b) => a - b);
      const name = fieldName(step);
      out.push(
        [`t_${name}_us_mean`, f(v.reduce((a, b) => a + b, 0) / v.length)],
        [`t_${name}_us_p50`, f(quantile(v, 0.5))],
        [`t_${name}_us_p95`, f(quantile(v, 0.95))],
      );
    }
  }
  out.push(
    ['run_id', s(cell.runId)], ['cell_id', s(cell.cellId)], ['status', s(cell.status)], ['aead', s(cell.aead)],
    ['build_hash', s(cell.buildHash)], ['firmware', s(cell.firmware)],
  );
  if (cell.error !== undefined) out.push(['error', s(cell.error)]);
  return out;
}

// ---------------------------------------------------------------- HTTP + spool

class WriteHttpError extends Error {
  constructor(readonly statusCode: number, body: string) {
    super(`HTTP ${statusCode}${body ? ': ' + body.slice(0, 300) : ''}`);
  }
}

function writeUrl(cfg: Pick<InfluxConfig, 'url' | 'org' | 'bucket'>): string {
  const base = cfg.url.replace(/\/+$/, '');
  return `${base}/api/v2/write?org=${encodeURIComponent(cfg.org)}&bucket=${encodeURIComponent(cfg.bucket)}&precision=${PRECISION}`;
}

/** POSTs line protocol; resolves on 2xx, rejects with WriteHttpError (status) or a network error. */
async function postLines(cfg: InfluxConfig, body: string): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (cfg.token) headers.authorization = `Token ${cfg.token}`;
  const res = await fetch(writeUrl(cfg), {
    method: 'POST', headers, body, signal: AbortSignal.timeout(cfg.timeoutMs ?? 5000),
  });
  const text = await res.text().catch(() => '');
  if (res.status < 200 || res.status > 299) throw new WriteHttpError(res.status, text);
}

function statusOf(e: unknown): number | undefined {
  if (e instanceof HttpError || e instanceof WriteHttpError) return e.statusCode;
  return undefined;
}

/** Network errors, timeouts, 429 and 5xx are worth retrying; other 4xx (bad token, bad data) are not. */
function retriable(e: unknown): boolean {
  const st = statusOf(e);
  return st === undefined || st === 429 || st >= 500;
}

function errText(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return `${err?.message ?? String(e)}${cause ? ` (${cause})` : ''}`;
}

let spoolSeq = 0;

/** Writes lines to a new spool file atomically (tmp + fsync + rename + dir fsync). Returns the file path. */
export function spoolLines(spoolDir: string, lines: string[]): string {
  mkdirSync(spoolDir, { recursive: true });
  const name = `batch-${Date.now()}-${process.pid}-${String(++spoolSeq).padStart(6, '0')}${SPOOL_SUFFIX}`;
  const tmp = join(spoolDir, `.${name}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, lines.join('\n') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const final = join(spoolDir, name);
  renameSync(tmp, final);
  fsyncDir(spoolDir);
  return final;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename itself is still atomic
  }
}

/** Spool files in replay order (oldest first). Temporary files of an interrupted spool write are ignored. */
export function listSpool(spoolDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(spoolDir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith(SPOOL_SUFFIX) && !n.startsWith('.')).sort().map((n) => join(spoolDir, n));
}

export interface PushResult {
  files: number;     // files replayed and deleted
  lines: number;     // lines in them
  failed: number;    // files still in the spool (rejected, or not tried because the server is unreachable)
  errors: string[];  // one line per failure
}

/**
 * Replays the spool (`qslab push`): each file is POSTed as one write request, and deleted only after a 2xx.
 * Stops at the first network error or 5xx (the rest stay, counted as failed); a 4xx (bad token, rejected data)
 * fails that file only. Never throws for server problems. Do not run two pushes on one spool at once.
 */
export async function pushSpool(cfg: InfluxConfig): Promise<PushResult> {
  const result: PushResult = { files: 0, lines: 0, failed: 0, errors: [] };
  const files = listSpool(cfg.spoolDir);
  for (let k = 0; k < files.length; k++) {
    const file = files[k]!;
    let body: string;
    try {
      body = readFileSync(file, 'utf8');
    } catch (e) {
      result.failed++;
      result.errors.push(`${file}: ${errText(e)}`);
      continue;
    }
    const n = body.split('\n').filter((l) => l.trim() !== '').length;
    if (n === 0) {
      removeFile(file, result);
      continue;
    }
    try {
      await postLines(cfg, body);
    } catch (e) {
      result.failed++;
      result.errors.push(`${file}: ${errText(e)}`);
      if (retriable(e)) {
        result.failed += files.length - k - 1;
        break;
      }
      continue;
    }
    result.files++;
    result.lines += n;
    removeFile(file, result);
  }
  fsyncDir(cfg.spoolDir);
  return result;
}

function removeFile(file: string, result: PushResult): void {
  try {
    unlinkSync(file);
  } catch (e) {
    // written but still on disk: a later push would write it twice, so say so loudly
    result.errors.push(`${file}: written, but could not be removed (${errText(e)}); remove it by hand`);
  }
}

// ---------------------------------------------------------------- the sink

function validate(cfg: InfluxConfig): void {
  let u: URL;
  try {
    u = new URL(cfg.url);
  } catch {
    throw new Error(`influx: url ${JSON.stringify(cfg.url)} is not a URL; use e.g. http://localhost:8086`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`influx: url ${cfg.url} must be http:// or https://`);
  }
  if (!cfg.spoolDir) throw new Error('influx: spoolDir is required (failed batches are spooled there, never dropped)');
  if (!cfg.bucket) throw new Error('influx: bucket is required');
}

export class InfluxSink {
  private readonly cfg: InfluxConfig;
  private readonly api: WriteApi;
  private readonly stringFields: boolean;
  private readonly runs = new Map<string, RunCtx>();
  private readonly lastTs = new Map<string, number>();
  private submitted = 0; // lines accepted; each ends up written, spooled or lost
  private waiters: Array<() => void> = [];
  private readonly c: InfluxCounters = { written: 0, failedBatches: 0, spooledLines: 0, retries: 0, lostLines: 0 };
  private degraded = false;
  private closing: Promise<InfluxCounters> | undefined;

  constructor(cfg: InfluxConfig) {
    validate(cfg);
    this.cfg = { ...cfg };
    this.stringFields = cfg.stringFields ?? true;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const sink = this;
    const client = new InfluxDB({ url: cfg.url, token: cfg.token || undefined, timeout: cfg.timeoutMs ?? 5000 });
    this.api = client.getWriteApi(cfg.org, cfg.bucket, PRECISION, {
      batchSize: cfg.batchSize ?? 500,
      flushInterval: cfg.flushIntervalMs ?? 1000,
      maxRetries: 0, // retries are ours (see writeFailed), so nothing ever waits in the client's retry buffer
      maxBufferLines: 1_000_000,
      writeSuccess(lines: string[]) {
        sink.c.written += lines.length;
        sink.degraded = false;
        sink.settled();
      },
      writeFailed(error: Error, lines: string[]) {
        // Returning a promise makes it the outcome of this batch: the client neither retries nor drops it.
        return sink.takeOver(error, lines);
      },
    });
  }

  /** Counters so far (a copy). */
  get counters(): InfluxCounters {
    return { ...this.c };
  }

  /** Registers the run (its campaign and rig become tags of everything written for it) and writes a run point. */
  beginRun(run: RunInfo): void {
    this.guard(() => {
      this.runs.set(run.id, { campaign: run.campaign, rig: run.rig });
      // a field keeps one type per series in InfluxDB: seed is always an integer (left out otherwise)
      this.emit(MEASUREMENT.run, { campaign: run.campaign, rig: run.rig }, [
        ['status_code', i(RUN_STATUS_CODE[run.status] ?? -1)], ['virtual', i(run.virtual ? 1 : 0)],
        ['seed', i(Number.isSafeInteger(run.seed) ? run.seed : NaN)],
        ['run_id', s(run.id)], ['status', s(run.status)], ['controller_version', s(run.controllerVersion)],
        ['git_commit', s(run.gitCommit)],
      ], Date.parse(run.startedAt));
    });
  }

  endRun(runId: string, status: RunStatus, endedAt: string): void {
    this.guard(() => {
      const ctx = this.runs.get(runId);
      this.emit(MEASUREMENT.run, { campaign: ctx?.campaign, rig: ctx?.rig }, [
        ['status_code', i(RUN_STATUS_CODE[status] ?? -1)], ['run_id', s(runId)], ['status', s(status)],
      ], Date.parse(endedAt));
    });
  }

  /** Cell summary; pass the cell's ops to add ok/failed counts and per-step mean/p50/p95. */
  upsertCell(cell: CellInfo, ops?: OpRecord[]): void {
    this.guard(() => {
      const ctx = this.runs.get(cell.runId);
      const tags: Tags = {
        campaign: ctx?.campaign, rig: ctx?.rig, node: cell.node, board: cell.board, suite: cell.suite,
        profile: cell.profile,
      };
      const when = Date.parse(cell.endedAt ?? cell.startedAt ?? '');
      this.emit(MEASUREMENT.cell, tags, cellFields(cell, ops), Number.isFinite(when) ? when : Date.now());
    });
  }

  /**
   * The campaign runner's OpSink: ops of one cell as they are stored locally. The first call for a run acts as
   * beginRun (campaign and rig tags, a qslab_run point); cell summaries are written by upsertCell, not here (this is called per op batch).
   */
  write(run: RunInfo, _cell: CellInfo, ops: OpRecord[]): void {
    this.guard(() => {
      if (!this.runs.has(run.id)) this.beginRun(run);
      this.addOps(ops);
    });
  }

  addOps(ops: OpRecord[]): void {
    this.guard(() => {
      for (const op of ops) this.emit(MEASUREMENT.op, opTags(op, this.runs.get(op.runId)), opFields(op), op.ts);
    });
  }

  addEvent(ev: RunEvent): void {
    this.guard(() => {
      const ctx = this.runs.get(ev.runId);
      const fields: Fields = [['n', i(1)], ['run_id', s(ev.runId)], ['detail', s(ev.detail)]];
      if (ev.cellId !== undefined) fields.push(['cell_id', s(ev.cellId)]);
      this.emit(MEASUREMENT.event, { campaign: ctx?.campaign, rig: ctx?.rig, node: ev.node, kind: ev.kind }, fields, ev.ts);
    });
  }

  /** One energy window: bounded keys are tags, figures are fields. */
  addEnergy(w: EnergyWindow): void {
    this.guard(() => {
      const ctx = this.runs.get(w.runId);
      const fields: Fields = [
        ['per_op_j', f(w.perOpJ)], ['per_op_unc_j', f(w.perOpUncJ)], ['gross_j', f(w.grossJ)], ['net_j', f(w.netJ)],
        ['baseline_w', f(w.baselineW)], ['ops', i(w.ops)], ['samples', i(w.samples)], ['window_ms', f(w.t1 - w.t0)],
        ['run_id', s(w.runId)], ['cell_id', s(w.cellId)], ['source', s(w.source)],
      ];
      if (w.drainPct100 !== undefined) fields.push(['drain_pct_100', f(w.drainPct100)]);
      if (w.truthPerOpJ !== undefined) fields.push(['truth_per_op_j', f(w.truthPerOpJ)]);
      if (w.clockErrMs !== undefined) fields.push(['clock_err_ms', f(w.clockErrMs)]);
      this.emit(MEASUREMENT.energy, { campaign: ctx?.campaign, rig: ctx?.rig, node: w.node, board: w.board, suite: w.suite, profile: w.profile, meter: w.meterKind }, fields, Math.round(w.t1));
    });
  }

  /** A sample trace, downsampled to at most TRACE_POINTS means over ≥ 1 ms buckets (the raw trace stays local). */
  addTrace(tr: SampleTrace): void {
    this.guard(() => {
      const n = tr.t.length;
      if (!n) return;
      const ctx = this.runs.get(tr.runId);
      const t0 = tr.t[0]!, span = tr.t[n - 1]! - t0;
      const bucket = Math.max(1, Math.ceil(span / TRACE_POINTS));
      let k = 0;
      while (k < n) {
        const start = Math.floor(tr.t[k]!);
        const end = start + bucket;
        let sv = 0, si = 0, m = 0;
        for (; k < n && tr.t[k]! < end; k++, m++) {
          sv += tr.v[k]!;
          si += tr.i[k]!;
        }
        this.emit(MEASUREMENT.power, { campaign: ctx?.campaign, rig: ctx?.rig, node: tr.node, meter: tr.meter },
          [['v', f(sv / m)], ['a', f(si / m)], ['w', f((sv / m) * (si / m))], ['n', i(m)], ['cell_id', s(tr.cellId)]], start);
      }
    });
  }

  /** Sends what is buffered and waits until every line so far is written or spooled. */
  async flush(): Promise<void> {
    if (this.closing) {
      await this.closing;
      return;
    }
    try {
      await this.api.flush();
    } catch {
      // outcome already handled by writeFailed
    }
    await this.drained();
  }

  /** Flushes, waits for every batch to be written or spooled, and returns the final counters. Idempotent. */
  close(): Promise<InfluxCounters> {
    this.closing ??= (async () => {
      try {
        await this.api.close();
      } catch {
        // outcome already handled by writeFailed
      }
      await this.drained();
      return this.counters;
    })();
    return this.closing;
  }

  // -- internals

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.report(`influx: ${errText(e)}`);
    }
  }

  private report(msg: string): void {
    try {
      this.cfg.onError?.(msg);
    } catch {
      // a logger must not break the sink
    }
  }

  /**
   * Points of one series need distinct timestamps: InfluxDB keeps only the last point per series and
   * timestamp. Ops of one node can arrive in the same millisecond, so a collision moves the point 1 ms later.
   */
  private emit(measurement: string, tags: Tags, fields: Fields, tsMs: number): void {
    const key = seriesKey(measurement, tags);
    let ts = Math.floor(Number.isFinite(tsMs) ? tsMs : Date.now());
    const last = this.lastTs.get(key);
    if (last !== undefined && ts <= last) ts = last + 1;
    const line = formatLine(measurement, tags, fields, ts, this.stringFields);
    if (line === undefined) return;
    this.lastTs.set(key, ts);
    this.submitted++;
    if (this.closing) {
      // after close(): nothing can be sent any more, keep the line for `qslab push`
      this.spool([line], 'write after close');
      return;
    }
    this.api.writeRecord(line);
  }

  private accounted(): number {
    return this.c.written + this.c.spooledLines + this.c.lostLines;
  }

  private settled(): void {
    if (this.accounted() < this.submitted) return;
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  /**
   * Resolves when every accepted line has an outcome. Batches sent by the client on its own (full buffer, flush
   * interval) are not awaitable through its API, hence the accounting. Bounded: if a batch never reports back
   * (a bug, not an outage — requests time out), the wait ends and the gap is reported.
   */
  private async drained(): Promise<void> {
    if (this.accounted() >= this.submitted) return;
    const retries = this.cfg.maxRetries ?? 2;
    const bound = (retries + 2) * (this.cfg.timeoutMs ?? 5000) + (this.cfg.retryDelayMs ?? 200) * 2 ** (retries + 1) + 5000;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((r) => this.waiters.push(r));
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, bound)));
    await Promise.race([done, timeout]);
    clearTimeout(timer);
    const gap = this.submitted - this.accounted();
    if (gap > 0) this.report(`influx: ${gap} lines still without outcome after ${bound} ms`);
  }

  /** Owns a batch the client failed to write: retry a little, then spool. Always resolves. */
  private async takeOver(error: Error, lines: string[]): Promise<void> {
    let last: unknown = error;
    if (!this.degraded && retriable(error)) {
      const body = lines.join('\n');
      let delay = this.cfg.retryDelayMs ?? 200;
      for (let attempt = 1; attempt <= (this.cfg.maxRetries ?? 2); attempt++) {
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
        this.c.retries++;
        try {
          await postLines(this.cfg, body);
          this.c.written += lines.length;
          this.degraded = false;
          this.settled();
          return;
        } catch (e) {
          last = e;
          if (!retriable(e)) break;
        }
      }
    }
    this.degraded = true;
    this.spool(lines, errText(last));
  }

  private spool(lines: string[], why: string): void {
    try {
      const file = spoolLines(this.cfg.spoolDir, lines);
      this.c.failedBatches++;
      this.c.spooledLines += lines.length;
      this.report(`influx: write failed (${why}); ${lines.length} lines spooled to ${file}`);
    } catch (e) {
      this.c.lostLines += lines.length;
      this.report(`influx: write failed (${why}) and spooling to ${this.cfg.spoolDir} failed too: ${errText(e)}; ` +
        `${lines.length} lines lost`);
    }
    this.settled();
  }
}

/** Opens a sink; throws only for a malformed config. */
export function openInfluxSink(cfg: InfluxConfig): InfluxSink {
  return new InfluxSink(cfg);
}
