// What every power meter driver gives the controller: batches of timestamped voltage/current samples (plus the
// meter's digital inputs where it has them, e.g. the PPK2's 8 logic channels carrying a node's marker line).
// One file per meter kind (meter-um34c.ts, meter-ppk2.ts, meter-ina2xx.ts); this file is the narrow interface.
import type { EventEmitter } from 'node:events';

/** Host time in milliseconds since the epoch, sub-millisecond resolution, monotonic within a process. */
export function hostNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Columnar so a 100 kS/s stream costs no object per sample. All arrays have the same length. */
export interface SampleBatch {
  /** Host time of each sample (ms since epoch), with the meter's known latency already subtracted. */
  t: Float64Array;
  /** Volts at the node's supply. */
  v: Float64Array;
  /** Amperes drawn by the node. */
  i: Float64Array;
  /** Digital inputs, bit k = channel k (PPK2 D0..D7), when the meter has them. */
  d?: Uint8Array;
}

export interface MeterInfo {
  kind: 'um34c' | 'um25c' | 'ppk2' | 'ina219' | 'ina226' | 'virtual';
  /** Nominal sample rate (Hz). */
  rateHz: number;
  /** Smallest current step the meter reports (A); drives the uncertainty of an energy window. */
  currentResolutionA: number;
  voltageResolutionV: number;
  /** Time from the physical quantity to our arrival stamp, subtracted from t (ms). */
  latencyMs: number;
  /** Whether samples carry digital inputs (marker lines). */
  digital: boolean;
}

/**
 * Events:
 *  'samples' (batch: SampleBatch)       — in time order, never overlapping
 *  'disconnect' (reason: string)        — the port vanished (USB unplug); the driver keeps trying to reopen it
 *  'reconnect' ()                        — the meter is streaming again (samples in between are missing: a gap)
 *  'warning' (message: string)          — a bad frame was dropped (bad header/trailer/checksum, truncated)
 *  'error' (err: Error)                 — unrecoverable
 */
export interface MeterDriver extends EventEmitter {
  readonly name: string;
  readonly info: MeterInfo;
  /** Opens the port, checks the meter answers, starts streaming samples. */
  start(): Promise<void>;
  /** Stops streaming and closes the port; idempotent. */
  stop(): Promise<void>;
  /** Counters for the report and the tests. */
  readonly stats: { samples: number; badFrames: number; disconnects: number; reconnects: number };
}
