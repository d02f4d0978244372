// Who does the server's post-quantum work. `noble` (default): @noble/post-quantum in this process — independent
// of the firmware's code, which is what the interop tests need. `firmware-c`: the firmware's own C ML-KEM /
// ML-DSA (KAT-checked, byte-compatible with noble) in qslab-pqc worker processes — ~10× faster, so a campaign's
// handshake times are not dominated by a slow server (an ML-DSA-65 signature costs ~8 ms in noble).
import { randomBytes } from 'node:crypto';
import { kem, dsa, DSA_CONTEXT, type DsaLevel, type KemSet } from './pq.js';
import { PqcTool } from '../pqc/tool.js';

export interface PqcBackend {
  readonly name: 'noble' | 'firmware-c';
  /** Throws when `ek` fails the FIPS 203 input checks. */
  encaps(set: KemSet, ek: Uint8Array): Promise<{ ct: Uint8Array; ss: Uint8Array }>;
  /** Pure, hedged ML-DSA with ctx "QSHS1". */
  sign(level: DsaLevel, msg: Uint8Array, sk: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export const nobleBackend: PqcBackend = {
  name: 'noble',
  encaps: async (set, ek) => kem(set).encaps(ek),
  sign: async (level, msg, sk) => dsa(level).sign(msg, sk),
  close: async () => undefined,
};

/** A pool of qslab-pqc processes; each request goes to the one with the fewest outstanding. */
export class FirmwareCBackend implements PqcBackend {
  readonly name = 'firmware-c' as const;
  private readonly tools: { tool: PqcTool; busy: number }[];

  constructor(workers = 2) {
    this.tools = Array.from({ length: Math.max(1, workers) }, () => ({ tool: new PqcTool().start(), busy: 0 }));
  }

  private async run<T>(fn: (t: PqcTool) => Promise<T>): Promise<T> {
    const w = this.tools.reduce((a, b) => (b.busy < a.busy ? b : a));
    w.busy++;
    try {
      return await fn(w.tool);
    } finally {
      w.busy--;
    }
  }

  async encaps(set: KemSet, ek: Uint8Array): Promise<{ ct: Uint8Array; ss: Uint8Array }> {
    const m = randomBytes(32);
    try {
      const [ct, ss] = await this.run((t) => t.bytes('kem.encaps', set, ek, m));
      return { ct: ct!, ss: ss! };
    } finally {
      m.fill(0);
    }
  }

  async sign(level: DsaLevel, msg: Uint8Array, sk: Uint8Array): Promise<Uint8Array> {
    const rnd = randomBytes(32);
    try {
      const [sig] = await this.run((t) => t.bytes('dsa.sign', level, 'external', 'pure', sk, msg, DSA_CONTEXT, rnd));
      return sig!;
    } finally {
      rnd.fill(0);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.tools.map((w) => w.tool.stop()));
  }
}
