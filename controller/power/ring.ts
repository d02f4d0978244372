// The last few seconds of a meter's samples, so an energy window can be cut after the burst it measures has
// ended (the baseline before it included). Fixed memory: a PPK2 at 100 kS/s for 30 s is 3 M samples, 75 MB.
import type { SampleBatch } from '../drivers/meter.js';

export class SampleRing {
  private readonly t: Float64Array;
  private readonly v: Float32Array;
  private readonly i: Float32Array;
  private readonly d: Uint8Array;
  private head = 0; // next write
  private count = 0;
  /** Newest sample time seen (ms), -Infinity before the first. */
  lastT = -Infinity;
  hasDigital = false;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.v = new Float32Array(capacity);
    this.i = new Float32Array(capacity);
    this.d = new Uint8Array(capacity);
  }

  static forRate(rateHz: number, seconds: number): SampleRing {
    return new SampleRing(Math.max(1024, Math.ceil(rateHz * seconds)));
  }

  push(b: SampleBatch): void {
    if (b.d) this.hasDigital = true;
    for (let k = 0; k < b.t.length; k++) {
      const tk = b.t[k]!;
      if (tk <= this.lastT) continue; // a reconnect re-anchors time: never let it run backwards
      this.t[this.head] = tk;
      this.v[this.head] = b.v[k]!;
      this.i[this.head] = b.i[k]!;
      this.d[this.head] = b.d ? b.d[k]! : 0;
      this.head = (this.head + 1) % this.capacity;
      if (this.count < this.capacity) this.count++;
      this.lastT = tk;
    }
  }

  /** Oldest sample time still held. */
  get firstT(): number {
    return this.count ? this.t[(this.head - this.count + this.capacity) % this.capacity]! : Infinity;
  }

  /** Samples with t in [t0, t1], in order. */
  slice(t0: number, t1: number): SampleBatch {
    const start = (this.head - this.count + this.capacity) % this.capacity;
    // binary search on the logical index
    const at = (k: number) => this.t[(start + k) % this.capacity]!;
    let lo = 0, hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at(mid) < t0) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < this.count && at(end) <= t1) end++;
    const n = end - lo;
    const out: SampleBatch = { t: new Float64Array(n), v: new Float64Array(n), i: new Float64Array(n) };
    if (this.hasDigital) out.d = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const p = (start + lo + k) % this.capacity;
      out.t[k] = this.t[p]!;
      out.v[k] = this.v[p]!;
      out.i[k] = this.i[p]!;
      if (out.d) out.d[k] = this.d[p]!;
    }
    return out;
  }
}
