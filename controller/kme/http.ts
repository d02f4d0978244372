// HTTPS front of one KME: ETSI GS QKD 014 routes, mutual TLS, the SAE identity from the client certificate, schema
// validation of every query and body, the standard's Error bodies. Never logs key material.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import {
  API_PREFIX, DecKeysQuerySchema, EncKeysQuerySchema, KeyIdsSchema, KeyRequestSchema, zodDetails, type EtsiError,
} from './etsi014.js';
import type { Kme, KmeLog, Reply } from './kme.js';
import { ID_RE } from './pki.js';

export const MAX_BODY_BYTES = 64 * 1024;

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly details?: Record<string, unknown>[], readonly headers?: Record<string, string>) {
    super(message);
  }
}

function send(res: ServerResponse, reply: Reply<unknown>): void {
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...reply.headers,
  });
  res.end(body);
}

function fail(status: number, message: string, details?: Record<string, unknown>[], headers?: Record<string, string>): never {
  throw new HttpError(status, message, details, headers);
}

/**
 * The SAE ID of the caller: the subject CN of its client certificate (the certificate already verified against the
 * KME CA by the TLS layer). Exactly one CN is required.
 */
export function saeIdOf(req: IncomingMessage): string {
  const sock = req.socket as TLSSocket;
  if (!sock.authorized) fail(401, `client certificate not accepted: ${String(sock.authorizationError ?? 'none presented')}`);
  const cn = sock.getPeerCertificate()?.subject?.CN as unknown;
  if (typeof cn !== 'string' || !ID_RE.test(cn)) fail(401, 'client certificate must carry exactly one subject CN that is a valid SAE ID');
  return cn;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) fail(400, `request body too large (max ${MAX_BODY_BYTES} bytes)`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_BODY_BYTES) fail(400, `request body too large (max ${MAX_BODY_BYTES} bytes)`);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseJson<T>(text: string, schema: z.ZodType<T>, what: string, emptyOk: boolean): T {
  let value: unknown;
  if (text.trim() === '') {
    if (!emptyOk) fail(400, `${what}: a JSON body is required`);
    value = {};
  } else {
    try {
      value = JSON.parse(text);
    } catch (e) {
      fail(400, `malformed JSON body: ${(e as Error).message}`);
    }
  }
  const r = schema.safeParse(value);
  if (!r.success) fail(400, `invalid ${what}`, zodDetails(r.error));
  return r.data;
}

function parseQuery<T>(params: URLSearchParams, schema: z.ZodType<T>, what: string, repeatable: string[] = []): T {
  const obj: Record<string, string | string[]> = {};
  for (const [k, v] of params) {
    if (repeatable.includes(k)) {
      ((obj[k] ??= []) as string[]).push(v);
    } else if (k in obj) {
      fail(400, `invalid ${what}: query parameter ${k} is given more than once`);
    } else {
      obj[k] = v;
    }
  }
  const r = schema.safeParse(obj);
  if (!r.success) fail(400, `invalid ${what}`, zodDetails(r.error));
  return r.data;
}

const ROUTE = new RegExp(`^${API_PREFIX}/([^/]+)/(status|enc_keys|dec_keys)$`);

async function route(kme: Kme, req: IncomingMessage): Promise<Reply<unknown>> {
  const caller = saeIdOf(req);
  const url = new URL(req.url ?? '/', 'https://kme.invalid');
  const m = ROUTE.exec(url.pathname);
  if (!m) fail(404, `no such resource: ${url.pathname} (the API is ${API_PREFIX}/{SAE_ID}/status|enc_keys|dec_keys)`);
  let sae: string;
  try {
    sae = decodeURIComponent(m[1]!);
  } catch {
    fail(400, 'SAE_ID in the path is not valid percent-encoding');
  }
  if (!ID_RE.test(sae)) fail(400, `SAE_ID "${sae.slice(0, 80)}" in the path is not a valid SAE ID`);
  const op = m[2]!;
  const method = req.method ?? 'GET';
  const allowed = op === 'status' ? ['GET'] : ['GET', 'POST'];
  if (!allowed.includes(method)) fail(405, `${method} is not allowed on ${op} (use ${allowed.join(' or ')})`, undefined, { Allow: allowed.join(', ') });

  if (method === 'POST') {
    if ([...url.searchParams.keys()].length) fail(400, `POST ${op} takes its parameters in the JSON body, not the query`);
    const ctype = String(req.headers['content-type'] ?? 'application/json').toLowerCase();
    if (!ctype.startsWith('application/json')) fail(400, `Content-Type must be application/json, not ${ctype.slice(0, 60)}`);
    const text = await readBody(req);
    if (op === 'enc_keys') return kme.encKeys(caller, sae, parseJson(text, KeyRequestSchema, 'key request', true));
    const ids = parseJson(text, KeyIdsSchema, 'key IDs request', false);
    return kme.decKeys(caller, sae, ids.key_IDs.map((k) => k.key_ID));
  }
  // GET: any body is ignored (drained).
  req.resume();
  if (op === 'status') {
    parseQuery(url.searchParams, z.strictObject({}), 'status request');
    return kme.status(caller, sae);
  }
  if (op === 'enc_keys') {
    const q = parseQuery(url.searchParams, EncKeysQuerySchema, 'key request');
    return kme.encKeys(caller, sae, { ...(q.number ? { number: q.number } : {}), ...(q.size ? { size: q.size } : {}) });
  }
  const q = parseQuery(url.searchParams, DecKeysQuerySchema, 'key IDs request', ['key_ID']);
  return kme.decKeys(caller, sae, q.key_ID);
}

export interface KmeServerOptions extends TlsMaterial {
  log?: KmeLog;
}

/** An HTTPS server (not yet listening) for one KME, requiring a client certificate signed by `ca`. */
export function createKmeServer(kme: Kme, opts: KmeServerOptions): Server {
  const log = opts.log ?? (() => {});
  const server = createServer({
    cert: opts.cert,
    key: opts.key,
    ca: opts.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  }, (req, res) => {
    route(kme, req).then((reply) => send(res, reply), (e: unknown) => {
      if (e instanceof HttpError) {
        const body: EtsiError = e.details ? { message: e.message, details: e.details } : { message: e.message };
        send(res, { status: e.status, body, ...(e.headers ? { headers: e.headers } : {}) });
        if (e.message.startsWith('request body too large')) res.once('finish', () => req.destroy());
        return;
      }
      // Unexpected: the standard's "error of server"; the message names no secret (errors here carry none).
      log(`${kme.id}: internal error: ${(e as Error).message}`);
      if (!res.headersSent) send(res, { status: 503, body: { message: `internal error of KME ${kme.id}` } });
      else res.destroy();
    });
  });
  server.on('tlsClientError', () => {
    // handshake refused (no or untrusted client certificate): nothing to answer, nothing to log per attempt
  });
  return server;
}
