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

/** What the link did in one direction of a cell attempt, as the userspace impairment relay measured it. */
export interface NetDirection {
  packets: number;            // TCP segments (chunks split at the MSS) / UDP datagrams offered to the link
  lost: number;               // losses drawn by the loss model (TCP: each repaired by a modelled retransmission)
  loss: number;               // realized loss fraction 0..1 (TCP: lost / loss decisions; UDP: + queue drops / packets)
  delayMeanMs: number;        // applied one-way delay incl. queueing, serialization and retransmission waits
  delaySdMs: number;
  throughputKbit: number;     // delivered bits / (last delivery − first arrival), kbit/s
  retransmitted: number;      // TCP: lost transmissions repaired by the retransmission model
}

/**
 * Realized network figures of one cell attempt that ran through the impairment relay (all its bursts combined;
 * a jamming schedule's phases together). Up = node → server, down = server → node.
 */
export interface NetFigures {
  runId: string;
  cellId: string;
  attempt: number;
  node: string;
  suite: string;              // the cell's suite (a QKD fallback burst still counts under it)
  profile: string;            // the cell's profile or schedule name
  backend: 'relay' | 'kernel'; // kernel = the node in its own namespace, shaped by tc/nft, the relay doing the rest
  shaping?: string;           // kernel: who shaped what (first phase), e.g. "kernel (ns): tbf 4000 kbit + nft random 10%; relay: delay_ms"
  configured?: {              // the profile as configured (absent under a jamming schedule)
    delayMs: number; jitterMs: number; lossModel: string; lossPct?: number; rateKbit: number;
  };
  bursts: number;             // relay instances (bursts) combined into this row
  flows: number;              // TCP connections through the relay
  resets: number;             // connections reset by the relay's retransmission cap
  up: NetDirection;
  down: NetDirection;
  kernel?: {                  // kernel-shaped cells: nft drops ÷ packets on the veth, per direction
    lossUp: number; lossDown: number; packetsUp: number; packetsDown: number;
  };
  rtt?: {                     // TCP_INFO RTT samples on the node↔relay leg (absent when none was sampled)
    n: number; sockets: number; medianMs: number; p5Ms: number; p95Ms: number; retrans: number;
  };
  tcp?: { outSegs: number; retransSegs: number }; // the node namespace's TCP counters (kernel-shaped cells)
  ts: number;                 // ms since epoch, when the attempt's figures were taken
}

/** One simulated QKD link of a campaign's qkd.sweep (controller/qkd/simulate.ts, simulateLink). */
export interface QkdSweepPoint {
  runId: string;
  protocol: string;           // bb84 | e91
  distanceKm: number;
  repeat: number;             // 0-based repeat index
  seed: number;               // campaign seed + repeat
  blockBits: number;          // sifted key-class bits collected per simulation
  qber: number;               // estimated QBER 0..1 (NaN when there were no sifted bits)
  secretKeyRateBps: number;   // final (secret) bits / acquisition time; 0 when aborted
  finalBits: number;
  siftedBits: number;
  durationS: number;          // simulated acquisition time
  abortReason?: string;
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
  addNet(n: NetFigures): void;
  addQkdSweep(p: QkdSweepPoint): void;
  listRuns(): RunInfo[];
  getRun(runId: string): RunInfo | undefined;
  latestRun(): RunInfo | undefined;
  getCells(runId: string): CellInfo[];
  getOps(runId: string): OpRecord[];
  getEvents(runId: string): RunEvent[];
  getEnergy(runId: string): EnergyWindow[];
  getTraces(runId: string, cellId?: string): SampleTrace[];
  getNet(runId: string): NetFigures[];
  getQkdSweep(runId: string): QkdSweepPoint[];
  close(): void;
}
