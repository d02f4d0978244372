// Node clock → host clock, fitted over the serial link with pings (DESIGN §5). Each ping gives the node's clock
// t_us at the moment it answered, bracketed by the host's send and receive times. On a real UART the request and
// the answer take (bytes × 10 / baud) on the wire, so the node's stamp lies after the request arrived and before
// the answer began: both bounds are corrected for their own line time, and the half-width of what is left is the
// error bound of that sample. The fit is a least-squares line through the tightest samples.
import { encodeFrame, type JsonObject } from '../link/frame.js';
import type { NodeLink } from '../drivers/node.js';
import { hostNow } from '../drivers/meter.js';

export interface ClockSample {
  /** Host time (ms since epoch) of the node's stamp: midpoint of the corrected bracket. */
  hostMs: number;
  nodeUs: number;
  /** Half-width of the corrected bracket (ms): the stamp lies within hostMs ± boundMs. */
  boundMs: number;
}

export interface ClockFit {
  /** host ms = offsetMs + slope × node ms. */
  offsetMs: number;
  slope: number;
  /** RMS residual of the samples used (ms). */
  residualMs: number;
  /** Error bound of a mapped time: the largest bracket half-width used plus the residual (ms). */
  errorMs: number;
  samples: number;
  toHostMs(nodeUs: number): number;
}

const lineMs = (bytes: number, baud: number) => (bytes * 10 * 1000) / baud;

/** n pings; `paced` says the line really runs at `baud` (a real UART or a paced virtual node). */
export async function clockSamples(link: NodeLink, n: number, baud: number, paced: boolean): Promise<ClockSample[]> {
  const out: ClockSample[] = [];
  for (let k = 0; k < n; k++) {
    const t0 = hostNow();
    const res = await link.request('ping', {}, { timeoutMs: 2000 });
    const t1 = hostNow();
    const nodeUs = Number(res.t_us);
    if (!Number.isFinite(nodeUs)) continue;
    // request: {"id":N,"cmd":"ping"} + CRC + newline; answer: the frame we got back
    const reqBytes = paced ? encodeFrame({ id: Number(res.id ?? 0), cmd: 'ping' }).length + 1 : 0;
    const resBytes = paced ? encodeFrame(res as JsonObject).length + 1 : 0;
    let lo = t0 + lineMs(reqBytes, baud);
    let hi = t1 - lineMs(resBytes, baud);
    if (hi < lo) [lo, hi] = [(lo + hi) / 2, (lo + hi) / 2];
    out.push({ hostMs: (lo + hi) / 2, nodeUs, boundMs: (hi - lo) / 2 });
  }
  return out;
}

/** Least-squares fit through the tighter half of the samples (slope fixed at 1 when they span < 1 s). */
export function fitClock(samples: ClockSample[]): ClockFit {
  if (!samples.length) throw new Error('clock fit: no samples');
  const sorted = [...samples].sort((a, b) => a.boundMs - b.boundMs);
  const use = sorted.slice(0, Math.max(2, Math.ceil(sorted.length / 2)));
  const xs = use.map((s) => s.nodeUs / 1000);
  const ys = use.map((s) => s.hostMs);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const span = Math.max(...xs) - Math.min(...xs);
  let slope = 1;
  if (span >= 1000) {
    let sxy = 0, sxx = 0;
    for (let i = 0; i < xs.length; i++) {
      sxy += (xs[i]! - mx) * (ys[i]! - my);
      sxx += (xs[i]! - mx) ** 2;
    }
    slope = sxx > 0 ? sxy / sxx : 1;
  }
  const offsetMs = my - slope * mx;
  const res = use.map((s) => s.hostMs - (offsetMs + (slope * s.nodeUs) / 1000));
  const residualMs = Math.sqrt(res.reduce((a, b) => a + b * b, 0) / res.length);
  const errorMs = Math.max(...use.map((s) => s.boundMs)) + residualMs;
  return { offsetMs, slope, residualMs, errorMs, samples: use.length, toHostMs: (nodeUs) => offsetMs + (slope * nodeUs) / 1000 };
}
