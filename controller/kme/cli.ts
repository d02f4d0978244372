// `qslab kme serve`: an emulated ETSI GS QKD 014 KME pair until Ctrl-C / SIGTERM. Wired into controller/cli.ts by
// registerKmeCommands(program).
import { Command, Option } from 'commander';
import { relative, resolve } from 'node:path';
import { installSignalHandlers } from '../cleanup.js';
import { ROOT } from '../paths.js';
import { ID_RE } from './pki.js';
import { startKmePair, type KmePair, type LinkSpec, type QkdProtocol } from './serve.js';

export const DEFAULT_KME_DIR = '.qslab/kme';
export const DEFAULT_MASTER_SAE = 'sae-controller';
export const DEFAULT_SLAVE_SAES = ['sae-node-esp32-a', 'sae-node-esp32-b', 'sae-node-rpi4-a'];

interface ServeOpts {
  dir: string;
  rateBps?: string;
  distanceKm?: string;
  protocol: QkdProtocol;
  seed?: string;
  keySize?: string;
  maxKeyCount?: string;
  maxKeyPerRequest?: string;
  masterSae: string;
  slaveSae?: string[];
  host: string;
  portA: string;
  portB: string;
  json?: boolean;
  verbose?: boolean;
}

function show(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

/** Summary printed by `kme serve` (also its --json output): URLs, certificate paths, link rate. No key material. */
export function describePair(pair: KmePair): Record<string, unknown> {
  return {
    kmeA: { id: pair.a.id, url: pair.a.url, saes: pair.a.saes },
    kmeB: { id: pair.b.id, url: pair.b.url, saes: pair.b.saes },
    ca: pair.pki.ca,
    saeCerts: pair.pki.saes,
    kmeCerts: pair.pki.kmes,
    rate: pair.rate,
    limits: pair.limits,
    saeIdentity: 'client certificate subject CN',
  };
}

export function registerKmeCommands(program: Command): Command {
  const kme = program.command('kme').description('emulated QKD key managers (ETSI GS QKD 014 over HTTPS with mutual TLS)');
  kme
    .command('serve')
    .description('run KME A (master SAE) and KME B (slave SAEs) on one emulated QKD link until Ctrl-C / SIGTERM')
    .option('--dir <dir>', 'PKI directory (CA, KME and SAE certificates; made once, reused)', DEFAULT_KME_DIR)
    .option('--rate-bps <n>', 'secret key rate of the link, bit/s (default: the QKD link simulation of bb84 over 25 km)')
    .option('--distance-km <km>', 'take the rate from the QKD link simulation (controller/qkd) at this fibre length')
    .addOption(new Option('--protocol <p>', 'QKD protocol for --distance-km').choices(['bb84', 'e91']).default('bb84'))
    .option('--seed <n>', 'seed of the QKD link simulation')
    .option('--key-size <bits>', 'default key size (bits, multiple of 8)')
    .option('--max-key-count <n>', 'key store capacity of each KME, in keys of the default size')
    .option('--max-key-per-request <n>', 'most keys one request may ask for')
    .option('--master-sae <id>', 'SAE attached to KME A', DEFAULT_MASTER_SAE)
    .option('--slave-sae <id...>', `SAEs attached to KME B (default ${DEFAULT_SLAVE_SAES.join(' ')})`)
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--port-a <n>', 'port of KME A (0: any free port)', '0')
    .option('--port-b <n>', 'port of KME B (0: any free port)', '0')
    .option('--json', 'print the URLs and certificate paths as JSON')
    .option('-v, --verbose', 'log every key request to stderr (SAEs, counts, sizes; never key material)')
    .action(async (opts: ServeOpts, cmd: Command) => {
      const usage = (msg: string): never => cmd.error(`qslab kme serve: ${msg}`, { exitCode: 2, code: 'qslab.usage' });
      const int = (name: string, v: string | undefined, min: number, max: number): number | undefined => {
        if (v === undefined) return undefined;
        if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) usage(`${name}: an integer ${min}..${max}, not "${v}"`);
        return Number(v);
      };
      const num = (name: string, v: string | undefined, min: number): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n) || n < min) usage(`${name}: a number >= ${min}, not "${v}"`);
        return n;
      };
      const rateBps = num('--rate-bps', opts.rateBps, 0);
      const distanceKm = num('--distance-km', opts.distanceKm, 0);
      const seed = int('--seed', opts.seed, 0, 2 ** 32 - 1);
      if (rateBps !== undefined && distanceKm !== undefined) usage('give either --rate-bps or --distance-km, not both');
      const slaveSaes = opts.slaveSae ?? DEFAULT_SLAVE_SAES;
      for (const id of [opts.masterSae, ...slaveSaes]) if (!ID_RE.test(id)) usage(`"${id}" is not a valid SAE ID (1-64 of A-Z a-z 0-9 . _ -)`);
      const link: LinkSpec | undefined = distanceKm !== undefined
        ? { protocol: opts.protocol, distanceKm, ...(seed !== undefined ? { seed } : {}) }
        : undefined;
      const keySize = int('--key-size', opts.keySize, 8, 65536);
      if (keySize !== undefined && keySize % 8) usage('--key-size: a multiple of 8 bits');
      const maxKeyCount = int('--max-key-count', opts.maxKeyCount, 1, 10_000_000);
      const maxKeyPerRequest = int('--max-key-per-request', opts.maxKeyPerRequest, 1, 100_000);
      const portA = int('--port-a', opts.portA, 0, 65535)!;
      const portB = int('--port-b', opts.portB, 0, 65535)!;

      const ac = new AbortController();
      const uninstall = installSignalHandlers(ac);
      let pair: KmePair | undefined;
      try {
        pair = await startKmePair({
          dir: resolve(ROOT, opts.dir),
          ...(rateBps !== undefined ? { rateBps } : {}),
          ...(link ? { link } : {}),
          ...(keySize !== undefined ? { keySize } : {}),
          ...(maxKeyCount !== undefined ? { maxKeyCount } : {}),
          ...(maxKeyPerRequest !== undefined ? { maxKeyPerRequest } : {}),
          masterSae: opts.masterSae,
          slaveSaes,
          host: opts.host,
          ports: [portA, portB],
          ...(opts.verbose ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
        });
        const d = describePair(pair);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(d)}\n`);
        } else {
          const r = pair.rate;
          const lines = [
            `KME A ${pair.a.id}: ${pair.a.url}  (SAE ${pair.a.saes.join(', ')})`,
            `KME B ${pair.b.id}: ${pair.b.url}  (SAEs ${pair.b.saes.join(', ')})`,
            `link: ${r.rateBps >= 100 ? Math.round(r.rateBps) : Number(r.rateBps.toPrecision(3))} bit/s secret key rate (${r.source}${r.link ? `: ${r.link.protocol} over ${r.link.distanceKm} km` : ''}${r.qber !== undefined ? `, QBER ${(r.qber * 100).toFixed(2)} %` : ''})${r.abortReason ? `, no key: ${r.abortReason}` : ''}`,
            `keys: ${pair.limits.keySize} bits default, store ${pair.limits.maxKeyCount} keys per KME, ${pair.limits.maxKeyPerRequest} per request`,
            `CA: ${show(pair.pki.ca)}`,
            ...Object.entries(pair.pki.saes).map(([id, p]) => `SAE ${id}: cert ${show(p.cert)}  key ${show(p.key)}`),
            `API: ${pair.a.url}/api/v1/keys/{slave_SAE_ID}/status|enc_keys, ${pair.b.url}/api/v1/keys/{master_SAE_ID}/dec_keys`,
            'running; Ctrl-C to stop',
          ];
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        await new Promise<void>((res) => {
          if (ac.signal.aborted) return res();
          ac.signal.addEventListener('abort', () => res(), { once: true });
        });
      } finally {
        uninstall();
        await pair?.stop();
      }
      if (!opts.json) process.stderr.write('KME pair stopped, keys zeroized\n');
    });
  return kme;
}
