// ETSI GS QKD 014 client for an SAE: talks to the emulated KMEs or to a vendor KME, given its URL, the SAE's client
// certificate and key, and the CA that signed the KME's server certificate. Responses are schema-checked; errors are
// typed and carry the HTTP status and the standard's Error body. Key material is returned, never logged.
import { Agent, request } from 'node:https';
import {
  API_PREFIX, ErrorSchema, KeyContainerSchema, StatusSchema, type EtsiError, type KeyContainer, type Status,
} from './etsi014.js';
import type { z } from 'zod';

export type { EtsiError, KeyContainer, Status } from './etsi014.js';

/** The KME answered with an HTTP error status (400, 401, 503, ...); `body` is its Error body when it sent one. */
export class KmeError extends Error {
  constructor(
    readonly status: number,
    readonly body: EtsiError | null,
    readonly operation: string,
  ) {
    super(`KME ${operation}: HTTP ${status}: ${body?.message ?? '(no ETSI error body)'}`);
    this.name = 'KmeError';
  }

  /** The standard's error message (or '' when the KME sent none). */
  get etsiMessage(): string {
    return this.body?.message ?? '';
  }
}

/** The KME could not be reached, TLS failed, or it answered something that is not the standard's format. */
export class KmeTransportError extends Error {
  constructor(message: string, readonly operation: string, readonly status?: number, options?: { cause?: unknown }) {
    super(`KME ${operation}: ${message}`, options);
    this.name = 'KmeTransportError';
  }
}

export interface KmeClientOptions {
  /** Base URL of the KME, e.g. https://127.0.0.1:8443 (a path prefix before /api/v1 is kept). */
  url: string;
  /** The SAE's client certificate and private key (PEM), and the CA for the KME's server certificate (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** Per-request timeout, ms (default 10 000). */
  timeoutMs?: number;
}

export interface EncKeysOptions {
  number?: number;
  /** Key size in bits. */
  size?: number;
  additionalSlaveSaeIds?: string[];
  extensionMandatory?: Record<string, unknown>[];
  extensionOptional?: Record<string, unknown>[];
  /** POST (default; carries every field) or GET (number and size as query parameters). */
  method?: 'GET' | 'POST';
}

export interface DecKeysOptions {
  /** POST (default) or GET (key_ID as query parameter; the standard's GET takes one key_ID). */
  method?: 'GET' | 'POST';
}

export class KmeClient {
  private readonly base: URL;
  private readonly prefix: string;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(opts: KmeClientOptions) {
    this.base = new URL(opts.url);
    if (this.base.protocol !== 'https:') throw new Error(`KME URL must be https:, not ${this.base.protocol}`);
    this.prefix = this.base.pathname.replace(/\/+$/, '');
    this.agent = new Agent({ cert: opts.cert, key: opts.key, ca: opts.ca, keepAlive: true, maxSockets: 8, minVersion: 'TLSv1.2' });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Get status (ETSI GS QKD 014 clause 5.2). */
  status(slaveSaeId: string): Promise<Status> {
    return this.call('GET', slaveSaeId, 'status', undefined, undefined, StatusSchema);
  }

  /** Get key (clause 5.3): new keys shared with slaveSaeId. */
  encKeys(slaveSaeId: string, opts: EncKeysOptions = {}): Promise<KeyContainer> {
    if ((opts.method ?? 'POST') === 'GET') {
      if (opts.additionalSlaveSaeIds || opts.extensionMandatory || opts.extensionOptional) {
        throw new Error('encKeys: additional slave SAE IDs and extensions need POST');
      }
      const q = new URLSearchParams();
      if (opts.number !== undefined) q.set('number', String(opts.number));
      if (opts.size !== undefined) q.set('size', String(opts.size));
      return this.call('GET', slaveSaeId, 'enc_keys', q, undefined, KeyContainerSchema);
    }
    const body: Record<string, unknown> = {};
    if (opts.number !== undefined) body.number = opts.number;
    if (opts.size !== undefined) body.size = opts.size;
    if (opts.additionalSlaveSaeIds) body.additional_slave_SAE_IDs = opts.additionalSlaveSaeIds;
    if (opts.extensionMandatory) body.extension_mandatory = opts.extensionMandatory;
    if (opts.extensionOptional) body.extension_optional = opts.extensionOptional;
    return this.call('POST', slaveSaeId, 'enc_keys', undefined, body, KeyContainerSchema);
  }

  /** Get key with key IDs (clause 5.4): the keys masterSaeId obtained with enc_keys. */
  decKeys(masterSaeId: string, keyIds: string[], opts: DecKeysOptions = {}): Promise<KeyContainer> {
    if ((opts.method ?? 'POST') === 'GET') {
      const q = new URLSearchParams();
      for (const id of keyIds) q.append('key_ID', id);
      return this.call('GET', masterSaeId, 'dec_keys', q, undefined, KeyContainerSchema);
    }
    return this.call('POST', masterSaeId, 'dec_keys', undefined, { key_IDs: keyIds.map((key_ID) => ({ key_ID })) }, KeyContainerSchema);
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private call<T>(method: 'GET' | 'POST', sae: string, op: string, query: URLSearchParams | undefined, body: unknown, schema: z.ZodType<T>): Promise<T> {
    const url = new URL(this.base.href);
    url.pathname = `${this.prefix}${API_PREFIX}/${encodeURIComponent(sae)}/${op}`;
    if (query) url.search = query.toString();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const operation = `${method} ${op}`;
    return new Promise<T>((resolve, reject) => {
      const req = request(url, {
        method,
        agent: this.agent,
        headers: {
          Accept: 'application/json',
          ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
        },
        timeout: this.timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new KmeTransportError(e.message, operation, res.statusCode, { cause: e })));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const raw = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
          } catch {
            json = undefined;
          } finally {
            // a key container's bytes are in `raw` as base64 text; wipe our copy
            raw.fill(0);
            for (const c of chunks) c.fill(0);
          }
          if (status < 200 || status >= 300) {
            const e = ErrorSchema.safeParse(json);
            reject(new KmeError(status, e.success ? e.data : null, operation));
            return;
          }
          const r = schema.safeParse(json);
          if (!r.success) {
            reject(new KmeTransportError(`HTTP ${status} with a body that is not the standard's format: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`, operation, status));
            return;
          }
          resolve(r.data);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(new KmeTransportError(e.message, operation, undefined, { cause: e })));
      req.end(payload);
    });
  }
}

/** The bytes of a delivered key (the container carries them base64-encoded). */
export function keyBytes(k: { key: string }): Buffer {
  return Buffer.from(k.key, 'base64');
}
