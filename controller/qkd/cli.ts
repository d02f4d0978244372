// `qkd simulate`: the QKD link simulation per distance, as a table or JSON. Wired into controller/cli.ts by
// registerQkdCommands(program). Bad arguments exit 2 (commander error); aborted links are results, exit 0.
import { Command } from 'commander';
import { simulateLinkDetailed, type LinkOptions, type LinkResult } from './simulate.js';

export interface QkdSimulateArgs {
  protocol: string;
  distanceKm: string;
  eve?: string;
  seed?: string;
  blockBits?: string;
  channel?: string;
  json?: boolean;
}

/** Parses the command's options into LinkOptions per distance (throws Error with a usage message). */
export function parseQkdArgs(a: QkdSimulateArgs): LinkOptions[] {
  if (a.protocol !== 'bb84' && a.protocol !== 'e91') throw new Error(`--protocol: bb84 or e91 (got "${a.protocol}")`);
  const distances = a.distanceKm.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!distances.length || distances.some((d) => !Number.isFinite(d) || d < 0)) throw new Error(`--distance-km: a comma-separated list of distances ≥ 0 (got "${a.distanceKm}")`);
  let eve: LinkOptions['eve'];
  if (a.eve) {
    const m = /^(intercept-resend|pns):([0-9.]+)$/.exec(a.eve);
    const fraction = m ? Number(m[2]) : NaN;
    if (!m || !(fraction >= 0 && fraction <= 1)) throw new Error(`--eve: intercept-resend:<fraction> or pns:<fraction>, fraction in [0, 1] (got "${a.eve}")`);
    if (m[1] === 'pns' && a.protocol !== 'bb84') throw new Error('--eve pns: the PNS attack applies to the weak-coherent BB84 source only');
    eve = { kind: m[1] as 'intercept-resend' | 'pns', fraction };
  }
  let seed: number | undefined;
  if (a.seed !== undefined) {
    seed = Number(a.seed);
    if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) throw new Error(`--seed: a non-negative integer (got "${a.seed}")`);
  }
  let blockBits: number | undefined;
  if (a.blockBits !== undefined) {
    blockBits = Number(a.blockBits);
    if (!Number.isInteger(blockBits) || blockBits < 1000 || blockBits > 1 << 25) throw new Error(`--block-bits: an integer 1000..${1 << 25} (got "${a.blockBits}")`);
  }
  if (a.channel !== undefined && a.channel !== 'fiber' && a.channel !== 'free-space') throw new Error(`--channel: fiber or free-space (got "${a.channel}")`);
  return distances.map((distanceKm) => {
    const o: LinkOptions = { protocol: a.protocol as 'bb84' | 'e91', distanceKm };
    if (eve) o.eve = eve;
    if (seed !== undefined) o.seed = seed;
    if (blockBits !== undefined) o.blockBits = blockBits;
    if (a.channel) o.channel = a.channel as 'fiber' | 'free-space';
    return o;
  });
}

export function formatQkdTable(rows: LinkResult[]): string {
  const head = ['km', 'time s', 'raw', 'sifted', 'QBER %', 'S', 'leaked', 'f', 'final', 'key bit/s', 'abort'];
  const body = rows.map((r) => [
    String(r.distanceKm), r.durationS.toPrecision(4), String(r.rawBits), String(r.siftedBits), (100 * r.qber).toFixed(2),
    r.chshS !== undefined ? r.chshS.toFixed(3) : '-', String(r.leakedBits), r.f !== undefined ? r.f.toFixed(3) : '-',
    String(r.finalBits), r.secretKeyRateBps.toPrecision(4), r.abortReason ?? '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === head.length - 1 ? 0 : b[i]!.length))));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padStart(w[i]!))).join('  ').trimEnd();
  return [line(head), w.map((x, i) => (i === w.length - 1 ? '-----' : '-'.repeat(x))).join('  '), ...body.map(line)].join('\n');
}

export function registerQkdCommands(program: Command): void {
  const qkd = program.command('qkd').description('quantum key distribution link simulation (BB84 decoy-state, E91)');
  qkd
    .command('simulate')
    .description('simulate a QKD link per distance: transmission, sifting, estimation, Cascade, Toeplitz privacy amplification, finite key')
    .requiredOption('--protocol <name>', 'bb84 (weak coherent source, vacuum + weak decoy) or e91 (entangled pairs, CHSH)')
    .requiredOption('--distance-km <list>', 'comma-separated distances, e.g. 0,10,25,50,100')
    .option('--eve <attack>', 'eavesdropper: intercept-resend:<fraction> or pns:<fraction> (BB84)')
    .option('--seed <n>', 'PRNG seed (default 1): same seed, same result')
    .option('--block-bits <n>', 'sifted key bits to collect per distance (default 1000000)')
    .option('--channel <kind>', 'fiber (default, 0.21 dB/km) or free-space')
    .option('--json', 'print the results as JSON')
    .action(function (this: Command, a: QkdSimulateArgs) {
      let opts: LinkOptions[];
      try {
        opts = parseQkdArgs(a);
      } catch (e) {
        return this.error(`error: ${(e as Error).message}`, { exitCode: 2, code: 'qslab.qkd.usage' });
      }
      const rows = opts.map((o) => {
        if (!a.json) process.stderr.write(`qkd: ${o.protocol} at ${o.distanceKm} km…\n`);
        return simulateLinkDetailed(o);
      });
      if (a.json) {
        process.stdout.write(`${JSON.stringify(rows.map(({ timingsMs: _t, ...r }) => r), null, 2)}\n`);
      } else {
        const eve = opts[0]!.eve ? `, eve ${opts[0]!.eve.kind} ${opts[0]!.eve.fraction}` : '';
        process.stdout.write(`${a.protocol.toUpperCase()} over ${a.channel ?? 'fiber'}${eve}, seed ${opts[0]!.seed ?? 1}\n${formatQkdTable(rows)}\n`);
      }
    });
}
