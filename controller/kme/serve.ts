// Starts an emulated KME pair (KME A and KME B on one QKD link) over HTTPS with mutual TLS, with its PKI.
import type { Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { cleanup } from '../cleanup.js';
import { keyRateForLink } from '../qkd/simulate.js';
import { createKmePair, DEFAULT_LIMITS, type KmeLog, type KmeStats } from './kme.js';
import { createKmeServer } from './http.js';
import { ensurePki, type CertPaths } from './pki.js';

export type QkdProtocol = 'bb84' | 'e91';

export interface LinkSpec {
  protocol: QkdProtocol;
  distanceKm: number;
  seed?: number;
}

export interface LinkRate {
  rateBps: number;
  qber?: number;
  abortReason?: string;
  /** Where the rate came from. */
  source: 'option' | 'qkd-simulation';
  link?: LinkSpec;
}

export const DEFAULT_LINK: LinkSpec = { protocol: 'bb84', distanceKm: 25 };

/**
 * The link's secret key rate: the explicit rate, else the QKD link simulation (controller/qkd, keyRateForLink) of
 * `link` (default bb84 over 25 km of fibre). A link the simulation aborts (QBER above threshold, too lossy) has
 * rate 0 and its reason.
 */
export function resolveLinkRate(opts: { rateBps?: number; link?: LinkSpec }): LinkRate {
  if (opts.rateBps !== undefined) return { rateBps: opts.rateBps, source: 'option' };
  const link = opts.link ?? DEFAULT_LINK;
  const r = keyRateForLink(link);
  const rateBps = r.abortReason ? 0 : Math.max(0, r.secretKeyRateBps);
  return { rateBps, qber: r.qber, ...(r.abortReason ? { abortReason: r.abortReason } : {}), source: 'qkd-simulation', link };
}

export interface KmePairOptions {
  /** PKI directory (created 0700; reused when present). */
  dir: string;
  /** Secret key rate of the emulated link, bit/s. Default: keyRateForLink(link). */
  rateBps?: number;
  /** Link to simulate when rateBps is not given (default bb84 over 25 km). */
  link?: LinkSpec;
  keySize?: number;
  minKeySize?: number;
  maxKeySize?: number;
  maxKeyCount?: number;
  maxKeyPerRequest?: number;
  /** The SAE attached to KME A (the usual master). */
  masterSae: string;
  /** The SAEs attached to KME B (the usual slaves). */
  slaveSaes: string[];
  kmeIds?: [string, string];
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Ports of KME A and KME B (default 0: any free port). */
  ports?: [number, number];
  /** Operational log (no key material): SAE, counts, sizes. */
  log?: KmeLog;
}

export interface KmeEndpoint {
  id: string;
  url: string;
  port: number;
  /** Server certificate and key of this KME. */
  cert: string;
  key: string;
  /** SAEs attached to this KME. */
  saes: string[];
}

export interface KmePair {
  a: KmeEndpoint;
  b: KmeEndpoint;
  pki: { dir: string; ca: string; caKey: string; kmes: Record<string, CertPaths>; saes: Record<string, CertPaths>; created: string[] };
  rate: LinkRate;
  limits: { keySize: number; minKeySize: number; maxKeySize: number; maxKeyCount: number; maxKeyPerRequest: number };
  stats(): { a: KmeStats; b: KmeStats };
  /** Closes both servers and zeroizes every stored key. Idempotent. */
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startKmePair(opts: KmePairOptions): Promise<KmePair> {
  const [idA, idB] = opts.kmeIds ?? ['kme-a', 'kme-b'];
  const host = opts.host ?? '127.0.0.1';
  if (!opts.slaveSaes.length) throw new Error('startKmePair: at least one slave SAE');
  const rate = resolveLinkRate({
    ...(opts.rateBps !== undefined ? { rateBps: opts.rateBps } : {}),
    ...(opts.link ? { link: opts.link } : {}),
  });
  const hosts = [...new Set(['127.0.0.1', '::1', 'localhost', ...(host === '0.0.0.0' || host === '::' ? [] : [host])])];
  const pki = await ensurePki({ dir: opts.dir, kmeIds: [idA, idB], saeIds: [opts.masterSae, ...opts.slaveSaes], hosts });
  const limits = {
    keySize: opts.keySize ?? DEFAULT_LIMITS.keySize,
    minKeySize: opts.minKeySize ?? Math.min(DEFAULT_LIMITS.minKeySize, opts.keySize ?? DEFAULT_LIMITS.keySize),
    maxKeySize: opts.maxKeySize ?? Math.max(DEFAULT_LIMITS.maxKeySize, opts.keySize ?? 0),
    maxKeyCount: opts.maxKeyCount ?? DEFAULT_LIMITS.maxKeyCount,
    maxKeyPerRequest: opts.maxKeyPerRequest ?? DEFAULT_LIMITS.maxKeyPerRequest,
  };
  const pair = createKmePair({
    ...limits,
    rateBps: rate.rateBps,
    ...(rate.abortReason ? { abortReason: rate.abortReason } : {}),
    kmeIds: [idA, idB],
    saesA: [opts.masterSae],
    saesB: opts.slaveSaes,
    ...(opts.log ? { log: opts.log } : {}),
  });
  const ca = readFileSync(pki.ca);
  const servers: Server[] = [];
  let stopped = false;
  let unregister = () => {};
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    await Promise.all(servers.map(close));
    pair.wipe();
  };
  unregister = cleanup.add(`KME pair ${idA}/${idB}`, stop);
  try {
    const endpoints: KmeEndpoint[] = [];
    for (const [i, kme] of [pair.a, pair.b].entries()) {
      const paths = pki.kmes[kme.id]!;
      const server = createKmeServer(kme, {
        cert: readFileSync(paths.cert), key: readFileSync(paths.key), ca, ...(opts.log ? { log: opts.log } : {}),
      });
      servers.push(server);
      const port = await listen(server, opts.ports?.[i] ?? 0, host);
      endpoints.push({ id: kme.id, url: `https://${urlHost(host)}:${port}`, port, cert: paths.cert, key: paths.key, saes: [...kme.saes] });
    }
    return {
      a: endpoints[0]!,
      b: endpoints[1]!,
      pki,
      rate,
      limits,
      stats: () => ({ a: pair.a.stats(), b: pair.b.stats() }),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
