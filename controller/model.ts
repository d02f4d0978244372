// One data model for the local store, InfluxDB and reports (DESIGN.md §6).
// Key material never appears here: ops carry timings, sizes and outcomes only.

export type RunStatus = 'running' | 'completed' | 'interrupted' | 'failed';
export type CellStatus = 'pending' | 'running' | 'ok' | 'failed' | 'skipped';

export interface RunInfo {
  id: string;                 // e.g. 20261126T184700Z-quickstart-3f2a
  campaign: string;           // campaign name
  campaignFile: string;       // path as given
  campaignText: string;       // the campaign file itself, for provenance
  rig: string;                // rig name
  rigFile: string;
  rigText: string;
  controllerVersion: string;
  gitCommit: string;          // controller commit, 'unknown' outside a checkout
  seed: number;
  virtual: boolean;           // true when any part of the rig is emulated
  virtualParts: string[];     // e.g. ["nodes: posix firmware on ptys", "data plane: loopback"]
  startedAt: string;          // ISO 8601
  endedAt?: string;
  status: RunStatus;
}

export interface CellInfo {
  runId: string;
  cellId: string;             // stable within a run: <node>/<suite>/<profile>/<payload>/r<rep>
  node: string;
  board: string;
  buildHash: string;
  firmware: string;           // firmware version string from hello
  suite: string;
  profile: string;            // network profile name ('loopback' when none)
  aead: string;
  records: number;            // M
  bytes: number;              // B
  refresh: number;            // K
  repetition: number;
  ops: number;                // handshakes requested in this cell
  status: CellStatus;
  attempts: number;
  error?: string;             // reason when failed (last attempt), e.g. "E_NET: connection refused"
  startedAt?: string;
  endedAt?: string;
}

/** Step durations in microseconds, measured by the node's own clock. */
export type StepTimings = Record<string, number>;

export interface OpRecord {
  runId: string;
  cellId: string;
  node: string;
  board: string;
  suite: string;
  profile: string;
  attempt: number;
  index: number;              // operation index within the cell attempt
  ok: boolean;
  err?: string;               // error code, e.g. E_AUTH
  msg?: string;               // human reason
  t: StepTimings;             // connect, keygen, dh|encap, verify, kdf, fin, hs, rec, total
  hsTx: number; hsRx: number; // data-plane bytes (handshake)
  recTx: number; recRx: number;
  recs: number;               // records exchanged
  heap: number;               // peak heap bytes
  stack: number;              // stack high-water bytes
  cpu: number;                // CPU busy % of the workload task
  hostUs?: number;            // controller wall time for the same op on the server side (µs)
  keyIds?: string[];          // ids of the QKD keys the op used, in order (never key material)
  ts: number;                 // host time the result arrived, ms since epoch
}

/** Something that happened during a run that reports should show (retries, node restarts, console noise). */
export interface RunEvent {
  runId: string;
  ts: number;
  kind: string;               // 'retry' | 'node-lost' | 'node-restart' | 'interrupt' | 'console' | ...
  node?: string;
  cellId?: string;
  detail: string;
}

/** Energy of one measured burst (DESIGN §6 window): the meter's samples integrated between two bounds. */
export interface EnergyWindow {
  runId: string;
  cellId: string;
  node: string;
  board: string;
  suite: string;
  profile: string;
  meter: string;              // rig name of the meter
  meterKind: string;          // um34c | ppk2 | ina219 | ...
  t0: number; t1: number;     // burst window, host ms since epoch
  b0: number; b1: number;     // idle baseline window before the burst
  source: 'marker' | 'clock-fit';
  clockErrMs?: number;        // error bound of the window edges when from a clock fit
  ops: number;                // operations inside the window
  samples: number;            // meter samples inside the window
  grossJ: number;             // ∫V·I over the window
  baselineW: number;          // mean idle power
  netJ: number;               // gross − baseline × duration
  perOpJ: number;
  perOpUncJ: number;          // 1σ uncertainty of perOpJ (resolution, rate, baseline noise, edges)
  drainPct100?: number;       // battery drain per 100 operations, % of the node's battery
  truthPerOpJ?: number;       // virtual rig only: the power model's own ground truth for the same window
}

/** Raw meter samples around one window (kept locally; InfluxDB gets them downsampled). */
export interface SampleTrace {
  runId: string;
  cellId: string;
  meter: string;
  node: string;
  t: Float64Array;            // host ms since epoch
  v: Float64Array;
  i: Float64Array;
  d?: Uint8Array;
}

/** The local store's narrow interface; the runner and reports only use this. */
export interface Store {
  beginRun(run: RunInfo): void;
  endRun(runId: string, status: RunStatus, endedAt: string): void;
  upsertCell(cell: CellInfo): void;
  addOps(ops: OpRecord[]): void;
  addEvent(ev: RunEvent): void;
  addEnergy(w: EnergyWindow): void;
  addTrace(tr: SampleTrace): void;
  listRuns(): RunInfo[];
  getRun(runId: string): RunInfo | undefined;
  latestRun(): RunInfo | undefined;
  getCells(runId: string): CellInfo[];
  getOps(runId: string): OpRecord[];
  getEvents(runId: string): RunEvent[];
  getEnergy(runId: string): EnergyWindow[];
  getTraces(runId: string, cellId?: string): SampleTrace[];
  close(): void;
}
