// The key managers' logic, without HTTP: an emulated QKD link that feeds identical key material into the key stores
// of its two KMEs at the link's secret key rate, and the three ETSI GS QKD 014 operations on a KME.
//
// Model. The link delivers a stream of secret bits to both ends (what QKD post-processing yields: identical,
// authenticated, privacy-amplified bits). Each KME keeps its own copy of the not-yet-used stream (a reservoir, at
// most max_key_count keys of key_size bits). When a master SAE asks its KME for keys (enc_keys), the KME cuts them
// from the head of its reservoir, names each with a fresh UUID, and tells the peer KME over the (emulated) KME-KME
// channel to cut the same bits from its reservoir and hold them under that key_ID for the slave SAE(s) (dec_keys).
// Every copy is zeroized as soon as it is delivered (master's copy after enc_keys, the slave's after dec_keys).
// Both KMEs live in one process, so the KME-KME channel is a synchronous call and the two reservoirs stay in lockstep.
import { randomBytes, randomUUID } from 'node:crypto';
import type { EtsiError, KeyContainer, Status } from './etsi014.js';

export interface Reply<T> {
  status: number;
  body: T | EtsiError;
  headers?: Record<string, string>;
}

const err = (status: number, message: string, details?: Record<string, unknown>[], headers?: Record<string, string>): Reply<never> => ({
  status,
  body: details ? { message, details } : { message },
  ...(headers ? { headers } : {}),
});

/** Not-yet-used key material at one end of the link: a FIFO of bytes, zeroized as it is consumed. */
export class KeyReservoir {
  private chunks: Buffer[] = [];
  private head = 0; // read offset in chunks[0]
  private size = 0;

  constructor(readonly capacityBytes: number) {}

  get bytes(): number {
    return this.size;
  }

  get room(): number {
    return this.capacityBytes - this.size;
  }

  /** Appends a copy of src (the caller wipes its own buffer). */
  append(src: Buffer): void {
    if (src.length > this.room) throw new Error('key reservoir overflow');
    if (!src.length) return;
    const chunk = Buffer.alloc(src.length);
    src.copy(chunk);
    this.chunks.push(chunk);
    this.size += src.length;
  }

  /** Removes n bytes from the head into a fresh buffer; the reservoir's copy is zeroized. */
  take(n: number): Buffer {
    if (n > this.size) throw new Error('key reservoir underflow');
    const out = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const c = this.chunks[0]!;
      const k = Math.min(n - done, c.length - this.head);
      c.copy(out, done, this.head, this.head + k);
      c.fill(0, this.head, this.head + k);
      this.head += k;
      done += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.size -= n;
    return out;
  }

  wipe(): void {
    for (const c of this.chunks) c.fill(0);
    this.chunks = [];
    this.head = 0;
    this.size = 0;
  }
}

export interface LinkOptions {
  /** Secret key rate of the link, bits per second (0: the link delivers nothing, e.g. QBER above threshold). */
  rateBps: number;
  capacityBytes: number;
  /** Why the link delivers nothing (from the QKD simulation), reported in 503 messages. */
  abortReason?: string;
  /** Milliseconds clock (default performance.now). */
  now?: () => number;
}

/**
 * The emulated quantum link: fills both ends' reservoirs with the same random bits at rateBps. Filling is computed
 * on demand from elapsed time (no timer to clean up); bits arriving while the reservoirs are full are lost, as on
 * a real link whose key store is full.
 */
export class EmulatedLink {
  readonly ends: [KeyReservoir, KeyReservoir];
  private last: number;
  private pendingBits = 0;
  private readonly now: () => number;
  deliveredBytes = 0;

  constructor(readonly opts: LinkOptions) {
    if (!Number.isFinite(opts.rateBps) || opts.rateBps < 0) throw new Error(`link rate must be a finite number >= 0 bit/s, not ${opts.rateBps}`);
    this.ends = [new KeyReservoir(opts.capacityBytes), new KeyReservoir(opts.capacityBytes)];
    this.now = opts.now ?? (() => performance.now());
    this.last = this.now();
  }

  get rateBps(): number {
    return this.opts.rateBps;
  }

  /** Brings both reservoirs up to date with the bits the link delivered since the last call. */
  advance(): void {
    const t = this.now();
    const dt = Math.max(0, t - this.last) / 1000;
    this.last = t;
    const [a, b] = this.ends;
    const room = Math.min(a.room, b.room);
    if (room === 0) {
      this.pendingBits = 0;
      return;
    }
    this.pendingBits += this.opts.rateBps * dt;
    const n = Math.min(room, Math.floor(this.pendingBits / 8));
    if (n <= 0) return;
    this.pendingBits = n === room ? 0 : this.pendingBits - n * 8;
    const bits = randomBytes(n);
    a.append(bits);
    b.append(bits);
    bits.fill(0);
    this.deliveredBytes += n;
  }

  /** Seconds until `bytes` more are stored at the current rate (Infinity when the link delivers nothing). */
  secondsUntil(bytes: number): number {
    if (this.opts.rateBps <= 0) return Infinity;
    return Math.max(0, (bytes * 8 - this.pendingBits) / this.opts.rateBps);
  }
}

export interface KmeLimits {
  /** Default key size (bits). */
  keySize: number;
  minKeySize: number;
  maxKeySize: number;
  /** Reservoir capacity, in keys of keySize. */
  maxKeyCount: number;
  maxKeyPerRequest: number;
}

interface HeldKey {
  bytes: Buffer;
  master: string;
  slaves: Set<string>;     // every slave this key was issued for
  remaining: Set<string>;  // slaves that have not fetched it yet
}

export interface KmeStats {
  storedBytes: number;
  storedKeys: number;
  heldForSlaves: number;
  issued: number;     // keys handed out by enc_keys
  delivered: number;  // keys handed out by dec_keys
}

export type KmeLog = (line: string) => void;

/** One KME: its attached SAEs, its end of the link, the keys it holds for its slave SAEs. */
export class Kme {
  peer!: Kme;
  private readonly held = new Map<string, HeldKey>();
  private issued = 0;
  private delivered = 0;

  constructor(
    readonly id: string,
    readonly saes: ReadonlySet<string>,
    private readonly link: EmulatedLink,
    private readonly end: 0 | 1,
    readonly limits: KmeLimits,
    private readonly log: KmeLog = () => {},
  ) {}

  private get reservoir(): KeyReservoir {
    return this.link.ends[this.end];
  }

  stats(): KmeStats {
    this.link.advance();
    return {
      storedBytes: this.reservoir.bytes,
      storedKeys: Math.floor((this.reservoir.bytes * 8) / this.limits.keySize),
      heldForSlaves: this.held.size,
      issued: this.issued,
      delivered: this.delivered,
    };
  }

  /** 401 unless `caller` is an SAE attached to this KME. */
  private checkCaller(caller: string): Reply<never> | null {
    return this.saes.has(caller) ? null : err(401, `SAE "${caller}" (client certificate CN) is not attached to KME ${this.id}`);
  }

  /** 401 unless `sae` is attached to the peer KME (the other end of the link). */
  private checkRemote(sae: string, role: string): Reply<never> | null {
    return this.peer.saes.has(sae) ? null : err(401, `${role} "${sae}" is not attached to the peer KME ${this.peer.id}: no key pairing with it`);
  }

  private maxSaeIdCount(): number {
    return Math.max(0, this.peer.saes.size - 1);
  }

  /** Get status (clause 5.2): caller is the master SAE, slaveSae the path parameter. */
  status(caller: string, slaveSae: string): Reply<Status> {
    const bad = this.checkCaller(caller) ?? this.checkRemote(slaveSae, 'slave SAE');
    if (bad) return bad;
    this.link.advance();
    const l = this.limits;
    return {
      status: 200,
      body: {
        source_KME_ID: this.id,
        target_KME_ID: this.peer.id,
        master_SAE_ID: caller,
        slave_SAE_ID: slaveSae,
        key_size: l.keySize,
        stored_key_count: Math.floor((this.reservoir.bytes * 8) / l.keySize),
        max_key_count: l.maxKeyCount,
        max_key_per_request: l.maxKeyPerRequest,
        max_key_size: l.maxKeySize,
        min_key_size: l.minKeySize,
        max_SAE_ID_count: this.maxSaeIdCount(),
      },
    };
  }

  /** Get key (clause 5.3): caller is the master SAE, slaveSae the path parameter. */
  encKeys(caller: string, slaveSae: string, req: {
    number?: number; size?: number; additional_slave_SAE_IDs?: string[];
    extension_mandatory?: Record<string, unknown>[];
  }): Reply<KeyContainer> {
    const bad = this.checkCaller(caller) ?? this.checkRemote(slaveSae, 'slave SAE');
    if (bad) return bad;
    const l = this.limits;
    const number = req.number ?? 1;
    const size = req.size ?? l.keySize;
    const additional = req.additional_slave_SAE_IDs ?? [];

    if (req.extension_mandatory?.length) {
      // This KME supports no extension: every mandatory one is unsupported (clause 6.2).
      return err(400, 'not all extension_mandatory parameters are supported',
        req.extension_mandatory.map((e) => ({ extension_mandatory_unsupported: Object.keys(e) })));
    }
    if (size % 8 !== 0) return err(400, `size ${size} is not supported: key sizes must be a multiple of 8 bits`, [{ size }]);
    if (size < l.minKeySize || size > l.maxKeySize) {
      return err(400, `size ${size} is out of range: min_key_size ${l.minKeySize}, max_key_size ${l.maxKeySize}`, [{ size }]);
    }
    if (number > l.maxKeyPerRequest) {
      return err(400, `number ${number} exceeds max_key_per_request ${l.maxKeyPerRequest}`, [{ number }]);
    }
    if (additional.length > this.maxSaeIdCount()) {
      return err(400, `${additional.length} additional_slave_SAE_IDs exceed max_SAE_ID_count ${this.maxSaeIdCount()}`);
    }
    const slaves = [slaveSae, ...additional];
    const dup = slaves.find((s, i) => slaves.indexOf(s) !== i);
    if (dup !== undefined) return err(400, `slave SAE "${dup}" is named twice (path and additional_slave_SAE_IDs must be distinct)`);
    for (const s of additional) {
      const b = this.checkRemote(s, 'additional slave SAE');
      if (b) return b;
    }

    this.link.advance();
    const need = (number * size) / 8;
    const have = this.reservoir.bytes;
    if (need > have) {
      const wait = this.link.secondsUntil(need - have);
      const why = this.link.rateBps <= 0
        ? `the QKD link delivers no key${this.link.opts.abortReason ? ` (${this.link.opts.abortReason})` : ''}`
        : `at the link's secret key rate of ${this.link.rateBps} bit/s that takes ${wait.toFixed(2)} s`;
      const capacityBits = l.maxKeyCount * l.keySize;
      const never = need * 8 > capacityBits ? `; the request exceeds the key store (max_key_count ${l.maxKeyCount} × ${l.keySize} bits) and can never be met` : '';
      return err(503, `insufficient key material: ${number} key(s) of ${size} bits requested, ${Math.floor((have * 8) / size)} stored; ${why}${never}`,
        [{ stored_key_count: Math.floor((have * 8) / l.keySize) }, { requested_bits: number * size }, { available_bits: have * 8 }],
        Number.isFinite(wait) && !never ? { 'Retry-After': String(Math.max(1, Math.ceil(wait))) } : undefined);
    }

    const keys: KeyContainer['keys'] = [];
    for (let i = 0; i < number; i++) {
      let keyId = randomUUID();
      while (this.peer.held.has(keyId)) keyId = randomUUID();
      const mine = this.reservoir.take(size / 8);
      // KME-KME channel: the peer cuts the same bits from its copy of the stream and holds them for the slave(s).
      this.peer.hold(keyId, size / 8, caller, slaves);
      keys.push({ key_ID: keyId, key: mine.toString('base64') });
      mine.fill(0);
    }
    this.issued += number;
    this.log(`${this.id}: enc_keys ${caller} -> ${slaves.join(',')}: ${number} key(s) of ${size} bits`);
    return { status: 200, body: { keys } };
  }

  /** Peer side of enc_keys: take the same bytes from this end's reservoir and hold them under keyId. */
  private hold(keyId: string, n: number, master: string, slaves: string[]): void {
    const bytes = this.link.ends[this.end].take(n);
    this.held.set(keyId, { bytes, master, slaves: new Set(slaves), remaining: new Set(slaves) });
  }

  /** Get key with key IDs (clause 5.4): caller is a slave SAE, masterSae the path parameter. All or nothing. */
  decKeys(caller: string, masterSae: string, keyIds: string[]): Reply<KeyContainer> {
    const bad = this.checkCaller(caller) ?? this.checkRemote(masterSae, 'master SAE');
    if (bad) return bad;
    if (keyIds.length > this.limits.maxKeyPerRequest) {
      return err(400, `${keyIds.length} key_IDs exceed max_key_per_request ${this.limits.maxKeyPerRequest}`);
    }
    const ids = keyIds.map((k) => k.toLowerCase());
    const dup = ids.find((k, i) => ids.indexOf(k) !== i);
    if (dup !== undefined) return err(400, `key_ID ${dup} is listed twice`, [{ key_ID: dup }]);
    const found: HeldKey[] = [];
    for (const id of ids) {
      const h = this.held.get(id);
      if (!h) return err(400, `key_ID ${id} not found: unknown, or already delivered (each key is delivered once)`, [{ key_ID_not_found: id }]);
      if (h.master !== masterSae || !h.slaves.has(caller)) {
        return err(401, `key_ID ${id} was not issued to SAE "${caller}" for master SAE "${masterSae}"`, [{ key_ID: id }]);
      }
      if (!h.remaining.has(caller)) return err(400, `key_ID ${id} was already delivered to SAE "${caller}" (each key is delivered once)`, [{ key_ID: id }]);
      found.push(h);
    }
    const keys: KeyContainer['keys'] = [];
    ids.forEach((id, i) => {
      const h = found[i]!;
      keys.push({ key_ID: id, key: h.bytes.toString('base64') });
      h.remaining.delete(caller);
      if (h.remaining.size === 0) {
        h.bytes.fill(0);
        this.held.delete(id);
      }
    });
    this.delivered += ids.length;
    this.log(`${this.id}: dec_keys ${masterSae} -> ${caller}: ${ids.length} key(s)`);
    return { status: 200, body: { keys } };
  }

  /** Zeroizes every held key. */
  wipe(): void {
    for (const h of this.held.values()) h.bytes.fill(0);
    this.held.clear();
  }
}

export interface PairOptions extends Partial<KmeLimits> {
  rateBps: number;
  abortReason?: string;
  kmeIds?: [string, string];
  /** SAEs attached to KME A and to KME B. */
  saesA: string[];
  saesB: string[];
  now?: () => number;
  log?: KmeLog;
}

export const DEFAULT_LIMITS: KmeLimits = {
  keySize: 256,
  minKeySize: 64,
  maxKeySize: 8192,
  maxKeyCount: 100_000,
  maxKeyPerRequest: 1000,
};

/** Two KMEs on one emulated link. */
export function createKmePair(opts: PairOptions): { a: Kme; b: Kme; link: EmulatedLink; wipe(): void } {
  const limits: KmeLimits = {
    keySize: opts.keySize ?? DEFAULT_LIMITS.keySize,
    minKeySize: opts.minKeySize ?? DEFAULT_LIMITS.minKeySize,
    maxKeySize: opts.maxKeySize ?? DEFAULT_LIMITS.maxKeySize,
    maxKeyCount: opts.maxKeyCount ?? DEFAULT_LIMITS.maxKeyCount,
    maxKeyPerRequest: opts.maxKeyPerRequest ?? DEFAULT_LIMITS.maxKeyPerRequest,
  };
  const { keySize, minKeySize, maxKeySize, maxKeyCount, maxKeyPerRequest } = limits;
  const intOk = (v: number) => Number.isInteger(v) && v > 0;
  if (![keySize, minKeySize, maxKeySize, maxKeyCount, maxKeyPerRequest].every(intOk)) throw new Error('KME limits must be positive integers');
  if (keySize % 8 || minKeySize % 8 || maxKeySize % 8) throw new Error('key sizes must be multiples of 8 bits');
  if (!(minKeySize <= keySize && keySize <= maxKeySize)) throw new Error(`key size ${keySize} must lie in ${minKeySize}..${maxKeySize}`);
  const overlap = opts.saesA.filter((s) => opts.saesB.includes(s));
  if (overlap.length) throw new Error(`an SAE is attached to one KME only: ${overlap.join(', ')}`);
  if (!opts.saesA.length || !opts.saesB.length) throw new Error('each KME needs at least one SAE');
  const link = new EmulatedLink({
    rateBps: opts.rateBps,
    capacityBytes: (maxKeyCount * keySize) / 8,
    ...(opts.abortReason ? { abortReason: opts.abortReason } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const [idA, idB] = opts.kmeIds ?? ['kme-a', 'kme-b'];
  const a = new Kme(idA, new Set(opts.saesA), link, 0, limits, opts.log);
  const b = new Kme(idB, new Set(opts.saesB), link, 1, limits, opts.log);
  a.peer = b;
  b.peer = a;
  return {
    a, b, link,
    wipe() {
      a.wipe();
      b.wipe();
      link.ends[0].wipe();
      link.ends[1].wipe();
    },
  };
}
