// Emulated KME pair (ETSI GS QKD 014 over HTTPS with mutual TLS): PKI, conformance of every endpoint and error path,
// pool refill at the link rate, a 10,000-key run with zero reuse, and `qslab kme serve`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki, findOpenssl } from '../kme/pki.js';
import { startKmePair, resolveLinkRate, DEFAULT_LINK, type KmePair, type KmePairOptions } from '../kme/serve.js';
import { KmeClient, KmeError, keyBytes } from '../kme/client.js';
import { UUID_RE } from '../kme/etsi014.js';
import { ROOT } from '../paths.js';
import { requireService } from './services.js';

const MASTER = 'sae-controller';
const S1 = 'sae-node-esp32-a';
const S2 = 'sae-node-esp32-b';
const STATUS_FIELDS = ['source_KME_ID', 'target_KME_ID', 'master_SAE_ID', 'slave_SAE_ID', 'key_size', 'stored_key_count',
  'max_key_count', 'max_key_per_request', 'max_key_size', 'min_key_size', 'max_SAE_ID_count'];

const HAVE_OPENSSL = findOpenssl() !== null;
let root = '';
let dir = '';
const pairs: KmePair[] = [];
const clients: KmeClient[] = [];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'qslab-kme-'));
  dir = join(root, 'pki');
});
after(async () => {
  for (const c of clients) c.close();
  for (const p of pairs) await p.stop();
  rmSync(root, { recursive: true, force: true });
});

async function pair(opts: Partial<KmePairOptions> = {}): Promise<KmePair> {
  const p = await startKmePair({ dir, masterSae: MASTER, slaveSaes: [S1, S2], rateBps: 1e7, ...opts });
  pairs.push(p);
  return p;
}

function client(p: KmePair, url: string, sae: string, pkiDir?: { cert: string; key: string; ca: string }): KmeClient {
  const f = pkiDir ?? { ...p.pki.saes[sae]!, ca: p.pki.ca };
  const c = new KmeClient({ url, cert: readFileSync(f.cert), key: readFileSync(f.key), ca: readFileSync(f.ca) });
  clients.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Expects a KmeError with this status and an ETSI Error body whose message matches. */
async function rejectsWith(p: Promise<unknown>, status: number, message: RegExp): Promise<KmeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KmeError, `expected KmeError, got ${(e as Error).stack}`);
    assert.equal(e.status, status, e.message);
    assert.ok(e.body, 'an ETSI Error body');
    assert.equal(typeof e.body.message, 'string');
    assert.match(e.body.message, message);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

interface Raw { status: number; headers: Record<string, unknown>; json: unknown }
/** A raw HTTPS request as an SAE (for bodies and queries the client would never send). */
function raw(p: KmePair, url: string, sae: string | null, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Raw> {
  const u = new URL(path, url);
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method,
      ca: readFileSync(p.pki.ca),
      ...(sae ? { cert: readFileSync(p.pki.saes[sae]!.cert), key: readFileSync(p.pki.saes[sae]!.key) } : {}),
      headers: { ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}), ...headers },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: assertion below fails
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function assertError(r: Raw, status: number, message: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  const j = r.json as { message?: unknown; details?: unknown };
  assert.equal(typeof j.message, 'string', `Error body: ${JSON.stringify(r.json)}`);
  assert.match(j.message as string, message);
  if (j.details !== undefined) assert.ok(Array.isArray(j.details));
  assert.match(String(r.headers['content-type']), /^application\/json/);
}

test('PKI: CA, KME server and SAE client certificates with openssl; 0700 dir, 0600 keys; idempotent', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const first = await ensurePki({ dir, kmeIds: ['kme-a', 'kme-b'], saeIds: [MASTER, S1, S2] });
  assert.equal(first.created.length, 12);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const p of [first.caKey, ...Object.values(first.kmes).map((k) => k.key), ...Object.values(first.saes).map((k) => k.key)]) {
    assert.equal(statSync(p).mode & 0o777, 0o600, p);
  }
  const ca = new X509Certificate(readFileSync(first.ca));
  const srv = new X509Certificate(readFileSync(first.kmes['kme-a']!.cert));
  assert.ok(srv.checkIssued(ca) && srv.verify(ca.publicKey));
  assert.match(srv.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.match(srv.subjectAltName ?? '', /DNS:localhost/);
  const sae = new X509Certificate(readFileSync(first.saes[S1]!.cert));
  assert.match(sae.subject, new RegExp(`CN=${S1}`));
  assert.ok(sae.verify(ca.publicKey));

  const again = await ensurePki({ dir, kmeIds: ['kme-a', 'kme-b'], saeIds: [MASTER, S1, S2] });
  assert.deepEqual(again.created, [], 'second run makes nothing');
  const more = await ensurePki({ dir, kmeIds: ['kme-a', 'kme-b'], saeIds: [MASTER, S1, S2, 'sae-extra'] });
  assert.deepEqual(more.created.map((p) => p.split('/').pop()), ['sae-extra.crt', 'sae-extra.key']);
  await assert.rejects(ensurePki({ dir, kmeIds: ['kme-a'], saeIds: ['bad/name'] }), /invalid KME\/SAE ID/);
});

test('status: every field of the standard, at both KMEs', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair({ keySize: 256, maxKeyCount: 5000, maxKeyPerRequest: 100 });
  const st = await client(p, p.a.url, MASTER).status(S1);
  assert.deepEqual(Object.keys(st).sort(), [...STATUS_FIELDS].sort());
  assert.equal(st.source_KME_ID, 'kme-a');
  assert.equal(st.target_KME_ID, 'kme-b');
  assert.equal(st.master_SAE_ID, MASTER);
  assert.equal(st.slave_SAE_ID, S1);
  assert.equal(st.key_size, 256);
  assert.equal(st.max_key_count, 5000);
  assert.equal(st.max_key_per_request, 100);
  assert.equal(st.min_key_size, 64);
  assert.equal(st.max_key_size, 8192);
  assert.equal(st.max_SAE_ID_count, 1, 'one more slave SAE attached to KME B');
  assert.ok(st.stored_key_count > 0 && st.stored_key_count <= 5000);
  // the reverse direction: a node SAE (attached to KME B) asks about keys with the controller
  const rev = await client(p, p.b.url, S1).status(MASTER);
  assert.equal(rev.source_KME_ID, 'kme-b');
  assert.equal(rev.master_SAE_ID, S1);
  assert.equal(rev.max_SAE_ID_count, 0);
  const r = await raw(p, p.a.url, MASTER, 'GET', `/api/v1/keys/${S1}/status?number=1`);
  assertError(r, 400, /invalid status request/);
  assertError(await raw(p, p.a.url, MASTER, 'POST', `/api/v1/keys/${S1}/status`, '{}'), 405, /not allowed/);
});

test('enc_keys then dec_keys give identical keys; GET and POST variants; defaults and sizes', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair();
  const m = client(p, p.a.url, MASTER);
  const s = client(p, p.b.url, S1);
  const one = await m.encKeys(S1, { method: 'GET' });
  assert.equal(one.keys.length, 1);
  assert.match(one.keys[0]!.key_ID, UUID_RE);
  assert.equal(keyBytes(one.keys[0]!).length, 32, 'default key_size 256 bits');
  assert.deepEqual(await s.decKeys(MASTER, [one.keys[0]!.key_ID], { method: 'GET' }), one);

  const post = await m.encKeys(S1, { number: 3, size: 512 });
  assert.equal(post.keys.length, 3);
  for (const k of post.keys) assert.equal(keyBytes(k).length, 64);
  const got = await s.decKeys(MASTER, post.keys.map((k) => k.key_ID));
  assert.deepEqual(got, post, 'same key_IDs, same keys, same order');

  const get = await m.encKeys(S1, { method: 'GET', number: 2, size: 128 });
  const g0 = await s.decKeys(MASTER, [get.keys[1]!.key_ID], { method: 'GET' });
  const g1 = await s.decKeys(MASTER, [get.keys[0]!.key_ID]);
  assert.deepEqual([g1.keys[0], g0.keys[0]], get.keys);
  // GET with key_ID repeated asks for several
  const two = await m.encKeys(S1, { number: 2 });
  assert.deepEqual(await s.decKeys(MASTER, two.keys.map((k) => k.key_ID), { method: 'GET' }), two);
  // extension_optional is accepted and ignored; key_IDs are matched in any case
  const opt = await m.encKeys(S1, { extensionOptional: [{ abc_route_type: 'direct' }] });
  assert.equal(opt.keys.length, 1);
  assert.deepEqual((await s.decKeys(MASTER, [opt.keys[0]!.key_ID.toUpperCase()])).keys[0]!.key, opt.keys[0]!.key);
  // an empty POST body means all defaults
  const e = await raw(p, p.a.url, MASTER, 'POST', `/api/v1/keys/${S1}/enc_keys`, '');
  assert.equal(e.status, 200);
  assert.equal((e.json as { keys: unknown[] }).keys.length, 1);
  // the reverse direction: node SAE as master at KME B, the controller fetches at KME A
  const rev = await client(p, p.b.url, S2).encKeys(MASTER, { number: 2 });
  assert.deepEqual(await m.decKeys(S2, rev.keys.map((k) => k.key_ID)), rev);
});

test('additional_slave_SAE_IDs: every named slave gets the key once; others are refused', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair();
  const m = client(p, p.a.url, MASTER);
  const k = await m.encKeys(S1, { number: 2, additionalSlaveSaeIds: [S2] });
  const ids = k.keys.map((x) => x.key_ID);
  assert.deepEqual(await client(p, p.b.url, S2).decKeys(MASTER, ids), k);
  assert.deepEqual(await client(p, p.b.url, S1).decKeys(MASTER, ids), k);
  await rejectsWith(client(p, p.b.url, S2).decKeys(MASTER, ids), 400, /not found/);
  assert.equal(p.stats().b.heldForSlaves, 0, 'deleted after the last slave fetched it');
  await rejectsWith(m.encKeys(S1, { additionalSlaveSaeIds: [S1] }), 400, /named twice/);
  await rejectsWith(m.encKeys(S1, { additionalSlaveSaeIds: [S2, 'sae-x'] }), 400, /exceed max_SAE_ID_count 1/);
  await rejectsWith(m.encKeys(S1, { additionalSlaveSaeIds: ['sae-unknown'] }), 401, /not attached to the peer KME/);
});

test('error paths: unknown key_ID, delivered once, too many keys, wrong sizes, extension_mandatory', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair({ maxKeyPerRequest: 50 });
  const m = client(p, p.a.url, MASTER);
  const s = client(p, p.b.url, S1);
  const e1 = await rejectsWith(s.decKeys(MASTER, ['550e8400-e29b-41d4-a716-446655440000']), 400, /not found/);
  assert.deepEqual(e1.body?.details, [{ key_ID_not_found: '550e8400-e29b-41d4-a716-446655440000' }]);
  const k = await m.encKeys(S1, { number: 2 });
  await s.decKeys(MASTER, [k.keys[0]!.key_ID]);
  await rejectsWith(s.decKeys(MASTER, [k.keys[0]!.key_ID]), 400, /already delivered|not found/);
  await rejectsWith(s.decKeys(MASTER, [k.keys[0]!.key_ID], { method: 'GET' }), 400, /not found/);
  // all or nothing: one bad key_ID in the list delivers none
  await rejectsWith(s.decKeys(MASTER, [k.keys[1]!.key_ID, k.keys[0]!.key_ID]), 400, /not found/);
  await rejectsWith(s.decKeys(MASTER, [k.keys[1]!.key_ID, k.keys[1]!.key_ID]), 400, /listed twice/);
  assert.equal((await s.decKeys(MASTER, [k.keys[1]!.key_ID])).keys[0]!.key, k.keys[1]!.key);
  // the master's own KME does not hand its keys out again through dec_keys
  await rejectsWith(m.decKeys(S1, [k.keys[1]!.key_ID]), 400, /not found/);

  await rejectsWith(m.encKeys(S1, { number: 51 }), 400, /exceeds max_key_per_request 50/);
  await rejectsWith(m.encKeys(S1, { number: 51, method: 'GET' }), 400, /exceeds max_key_per_request 50/);
  await rejectsWith(s.decKeys(MASTER, Array.from({ length: 51 }, () => crypto.randomUUID())), 400, /exceed max_key_per_request/);
  await rejectsWith(m.encKeys(S1, { size: 12 }), 400, /multiple of 8/);
  await rejectsWith(m.encKeys(S1, { size: 12, method: 'GET' }), 400, /multiple of 8/);
  await rejectsWith(m.encKeys(S1, { size: 32 }), 400, /out of range: min_key_size 64/);
  await rejectsWith(m.encKeys(S1, { size: 8200 }), 400, /out of range: .*max_key_size 8192/);
  const ext = await rejectsWith(m.encKeys(S1, { extensionMandatory: [{ abc_route_type: 'direct' }] }), 400, /not all extension_mandatory parameters are supported/);
  assert.deepEqual(ext.body?.details, [{ extension_mandatory_unsupported: ['abc_route_type'] }]);
});

test('a dry link: more keys than stored is 503 with Retry-After; a link that delivers nothing says so', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair({ rateBps: 2560, keySize: 256, maxKeyCount: 1000 }); // 10 keys/s
  const m = client(p, p.a.url, MASTER);
  const e = await rejectsWith(m.encKeys(S1, { number: 500 }), 503, /insufficient key material: 500 key\(s\) of 256 bits requested, \d+ stored; at the link's secret key rate of 2560 bit\/s/);
  assert.ok(e.body?.details?.some((d) => 'stored_key_count' in d));
  const r = await raw(p, p.a.url, MASTER, 'GET', `/api/v1/keys/${S1}/enc_keys?number=500`);
  assertError(r, 503, /insufficient key material/);
  const retry = Number(r.headers['retry-after']);
  assert.ok(retry >= 45 && retry <= 51, `Retry-After ${retry} s for ~500 keys at 10 keys/s`);
  // what is stored can be had, and then the pool is empty
  const stored = (await m.status(S1)).stored_key_count;
  if (stored > 0) assert.equal((await m.encKeys(S1, { number: stored })).keys.length, stored);
  await rejectsWith(m.encKeys(S1, { number: 5 }), 503, /insufficient key material/);
  // asking more than the store can ever hold: said so, no Retry-After
  await rejectsWith(m.encKeys(S1, { number: 1000, size: 512 }), 503, /can never be met/);

  const dead = await pair({ rateBps: 0 });
  const st = await client(dead, dead.a.url, MASTER).status(S1);
  assert.equal(st.stored_key_count, 0);
  await rejectsWith(client(dead, dead.a.url, MASTER).encKeys(S1), 503, /the QKD link delivers no key/);
});

test('SAE identity from the client certificate: wrong SAE 401, no certificate or a foreign CA refused in TLS', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair();
  const m = client(p, p.a.url, MASTER);
  const k = await m.encKeys(S1, { number: 1 });
  const id = k.keys[0]!.key_ID;
  // another slave SAE's certificate may not take S1's key
  await rejectsWith(client(p, p.b.url, S2).decKeys(MASTER, [id]), 401, /was not issued to SAE "sae-node-esp32-b"/);
  // the right slave naming the wrong master in the path
  await rejectsWith(client(p, p.b.url, S1).decKeys(S2, [id]), 401, /not attached to the peer KME|was not issued/);
  // a slave SAE is not attached to KME A; the master is not attached to KME B
  await rejectsWith(client(p, p.a.url, S1).encKeys(S2), 401, /not attached to KME kme-a/);
  await rejectsWith(client(p, p.a.url, S1).decKeys(MASTER, [id]), 401, /not attached to KME kme-a/);
  await rejectsWith(client(p, p.b.url, MASTER).decKeys(MASTER, [id]), 401, /not attached to KME kme-b/);
  // a slave the peer KME does not know
  await rejectsWith(m.status('sae-stranger'), 401, /not attached to the peer KME/);
  await rejectsWith(m.encKeys('sae-stranger'), 401, /not attached to the peer KME/);
  // the key is still there for its slave
  assert.deepEqual(await client(p, p.b.url, S1).decKeys(MASTER, [id]), k);

  // no client certificate: the TLS handshake is refused, no HTTP answer
  await assert.rejects(raw(p, p.a.url, null, 'GET', `/api/v1/keys/${S1}/status`), (e: NodeJS.ErrnoException) => {
    assert.match(`${e.code} ${e.message}`, /CERTIFICATE_REQUIRED|certificate required|ECONNRESET|socket hang up|EPIPE/i);
    return true;
  });
  // a certificate of the same name from another CA: refused in TLS as well
  const other = await ensurePki({ dir: join(root, 'other-ca'), kmeIds: ['kme-x'], saeIds: [MASTER] });
  const foreign = client(p, p.a.url, MASTER, { ...other.saes[MASTER]!, ca: p.pki.ca });
  await assert.rejects(foreign.status(S1), (e: Error) => e.name === 'KmeTransportError');
});

test('malformed requests: 400 with the standard Error body, never a crash', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const p = await pair();
  const A = p.a.url;
  const B = p.b.url;
  const enc = `/api/v1/keys/${S1}/enc_keys`;
  const dec = `/api/v1/keys/${MASTER}/dec_keys`;
  assertError(await raw(p, A, MASTER, 'POST', enc, '{"number": 2,'), 400, /malformed JSON body/);
  assertError(await raw(p, A, MASTER, 'POST', enc, 'null'), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'POST', enc, '[1,2]'), 400, /invalid key request/);
  const typed = await raw(p, A, MASTER, 'POST', enc, '{"number": "2"}');
  assertError(typed, 400, /invalid key request/);
  assert.ok(((typed.json as { details: Record<string, unknown>[] }).details).some((d) => 'number' in d));
  assertError(await raw(p, A, MASTER, 'POST', enc, '{"number": 0}'), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'POST', enc, '{"number": 1.5}'), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'POST', enc, '{"numbr": 2}'), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'POST', enc, '{"additional_slave_SAE_IDs": "x"}'), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'POST', enc, '{}', { 'Content-Type': 'text/plain' }), 400, /Content-Type must be application\/json/);
  assertError(await raw(p, A, MASTER, 'POST', `${enc}?number=2`, '{}'), 400, /JSON body, not the query/);
  assertError(await raw(p, A, MASTER, 'POST', enc, JSON.stringify({ pad: 'x'.repeat(70_000) })), 400, /too large/);
  assertError(await raw(p, A, MASTER, 'GET', `${enc}?number=abc`), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'GET', `${enc}?number=-1`), 400, /invalid key request/);
  assertError(await raw(p, A, MASTER, 'GET', `${enc}?number=1&number=2`), 400, /more than once/);
  assertError(await raw(p, A, MASTER, 'GET', `${enc}?count=2`), 400, /invalid key request/);
  assertError(await raw(p, B, S1, 'POST', dec, ''), 400, /a JSON body is required/);
  assertError(await raw(p, B, S1, 'POST', dec, '{}'), 400, /invalid key IDs request/);
  assertError(await raw(p, B, S1, 'POST', dec, '{"key_IDs": []}'), 400, /invalid key IDs request/);
  assertError(await raw(p, B, S1, 'POST', dec, '{"key_IDs": ["550e8400-e29b-41d4-a716-446655440000"]}'), 400, /invalid key IDs request/);
  assertError(await raw(p, B, S1, 'POST', dec, '{"key_IDs": [{"key_ID": "not-a-uuid"}]}'), 400, /invalid key IDs request/);
  assertError(await raw(p, B, S1, 'GET', dec), 400, /invalid key IDs request/);
  assertError(await raw(p, B, S1, 'GET', `${dec}?key_ID=xyz`), 400, /invalid key IDs request/);
  assertError(await raw(p, A, MASTER, 'GET', '/api/v1/keys/bad%ZZ/status'), 400, /percent-encoding/);
  assertError(await raw(p, A, MASTER, 'GET', '/api/v1/keys/a%2Fb/status'), 400, /not a valid SAE ID/);
  assertError(await raw(p, A, MASTER, 'GET', '/api/v1/keys/x/other'), 404, /no such resource/);
  assertError(await raw(p, A, MASTER, 'GET', '/'), 404, /no such resource/);
  const del = await raw(p, A, MASTER, 'DELETE', enc);
  assertError(del, 405, /not allowed/);
  assert.equal(del.headers.allow, 'GET, POST');
  // still serving
  assert.equal((await client(p, A, MASTER).encKeys(S1)).keys.length, 1);
});

test('the pool fills at the link rate up to max_key_count', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const keySize = 256;
  const rateBps = 200 * keySize; // 200 keys/s
  const p = await pair({ rateBps, keySize, maxKeyCount: 10_000 });
  const m = client(p, p.a.url, MASTER);
  await m.status(S1); // connection up
  const t0 = performance.now();
  const c0 = (await m.status(S1)).stored_key_count;
  const t0b = performance.now();
  await sleep(1500);
  const t1 = performance.now();
  const c1 = (await m.status(S1)).stored_key_count;
  const t1b = performance.now();
  const seconds = ((t1 + t1b) - (t0 + t0b)) / 2000;
  const expected = (rateBps * seconds) / keySize;
  const got = c1 - c0;
  t.diagnostic(`refill: ${got} keys in ${seconds.toFixed(3)} s, expected ${expected.toFixed(1)} (rate ${rateBps} bit/s, ${keySize}-bit keys)`);
  assert.ok(Math.abs(got - expected) <= expected * 0.05 + 2, `${got} keys vs expected ${expected.toFixed(1)}`);
  // the slave's KME holds the same amount
  const b = p.stats().b;
  assert.equal(b.storedKeys, p.stats().a.storedKeys);

  // a small store fills up and stops at max_key_count
  const small = await pair({ rateBps: 256 * 1000, keySize: 256, maxKeyCount: 40 });
  await sleep(200);
  const sm = client(small, small.a.url, MASTER);
  assert.equal((await sm.status(S1)).stored_key_count, 40);
  await sm.encKeys(S1, { number: 40 });
  assert.ok((await sm.status(S1)).stored_key_count < 40);
});

test('10,000 keys: unique key_IDs, identical at both ends, each delivered once, never reused', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const N = 10_000;
  const BATCH = 500;
  const p = await pair({ rateBps: 1e8, keySize: 256, maxKeyCount: 20_000, maxKeyPerRequest: BATCH });
  const m = client(p, p.a.url, MASTER);
  const s = client(p, p.b.url, S1);
  const start = performance.now();
  const master = new Map<string, string>();
  const slave = new Map<string, string>();
  let retries = 0;
  for (let i = 0; i < N / BATCH; i++) {
    let k;
    for (;;) {
      try {
        k = await m.encKeys(S1, { number: BATCH });
        break;
      } catch (e) {
        if (!(e instanceof KmeError && e.status === 503) || ++retries > 100) throw e;
        await sleep(10);
      }
    }
    for (const x of k.keys) {
      assert.ok(!master.has(x.key_ID), `key_ID ${x.key_ID} issued twice`);
      master.set(x.key_ID, x.key);
    }
    // the slave fetches in two halves, one as GET for a single key
    const ids = k.keys.map((x) => x.key_ID);
    const d1 = await s.decKeys(MASTER, ids.slice(0, BATCH - 1));
    const d2 = await s.decKeys(MASTER, ids.slice(BATCH - 1), { method: 'GET' });
    for (const x of [...d1.keys, ...d2.keys]) {
      assert.ok(!slave.has(x.key_ID), `key_ID ${x.key_ID} delivered twice`);
      slave.set(x.key_ID, x.key);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  assert.equal(master.size, N);
  assert.equal(slave.size, N);
  let same = 0;
  for (const [id, key] of master) if (slave.get(id) === key) same++;
  assert.equal(same, N, 'every key identical at both ends');
  assert.equal(new Set(master.values()).size, N, 'no key material reused under two key_IDs');
  for (const v of master.values()) assert.equal(Buffer.from(v, 'base64').length, 32);
  // nothing is delivered twice
  const sample = [...master.keys()].filter((_, i) => i % 1000 === 0);
  await rejectsWith(s.decKeys(MASTER, sample), 400, /not found/);
  const st = p.stats();
  assert.equal(st.a.issued, N);
  assert.equal(st.b.delivered, N);
  assert.equal(st.b.heldForSlaves, 0, 'every delivered key deleted (zeroized) at the slave\'s KME');
  assert.equal(st.a.storedBytes, st.b.storedBytes, 'both ends stay in lockstep');
  t.diagnostic(`10,000 keys in ${seconds.toFixed(2)} s (${(N / seconds).toFixed(0)} keys/s, ${N / BATCH} enc_keys + ${2 * N / BATCH} dec_keys requests, ${retries} 503 retries)`);
});

test('link rate from the QKD link simulation: a long link runs dry, an aborted link delivers nothing', async (t) => {
  assert.deepEqual(resolveLinkRate({ rateBps: 1234 }), { rateBps: 1234, source: 'option' });
  const near = resolveLinkRate({ link: { protocol: 'bb84', distanceKm: 10, seed: 1 } });
  const far = resolveLinkRate({ link: { protocol: 'bb84', distanceKm: 100, seed: 1 } });
  const dead = resolveLinkRate({ link: { protocol: 'bb84', distanceKm: 250, seed: 1 } });
  assert.equal(near.source, 'qkd-simulation');
  assert.ok(near.rateBps > far.rateBps && far.rateBps > 0, `10 km ${near.rateBps} bit/s > 100 km ${far.rateBps} bit/s > 0`);
  assert.equal(dead.rateBps, 0);
  assert.ok(dead.abortReason);
  assert.deepEqual(resolveLinkRate({}).link, DEFAULT_LINK);
  t.diagnostic(`bb84: 10 km ${near.rateBps.toFixed(0)} bit/s, 100 km ${far.rateBps.toFixed(1)} bit/s, 250 km aborted (${dead.abortReason})`);
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  // 100 km: a few bits per second; 100 keys are far away
  const p = await pair({ rateBps: undefined, link: { protocol: 'bb84', distanceKm: 100, seed: 1 } });
  assert.equal(p.rate.rateBps, far.rateBps);
  await rejectsWith(client(p, p.a.url, MASTER).encKeys(S1, { number: 100 }), 503, /insufficient key material/);
  const d = await pair({ rateBps: undefined, link: { protocol: 'bb84', distanceKm: 250, seed: 1 } });
  await rejectsWith(client(d, d.a.url, MASTER).encKeys(S1), 503, new RegExp(`the QKD link delivers no key \\(${dead.abortReason!.slice(0, 10)}`));
});

test('qslab kme serve: prints URLs and certificate paths, serves, stops on SIGTERM', async (t) => {
  if (!requireService(t, 'openssl', HAVE_OPENSSL)) return;
  const cliDir = join(root, 'cli-pki');
  const mod = join(ROOT, 'dist', 'controller', 'kme', 'cli.js');
  const cleanupMod = join(ROOT, 'dist', 'controller', 'cleanup.js');
  const script = [
    "import { Command } from 'commander';",
    `import { registerKmeCommands } from ${JSON.stringify(mod)};`,
    `import { cleanup } from ${JSON.stringify(cleanupMod)};`,
    "const program = new Command().name('qslab').exitOverride();",
    'registerKmeCommands(program);',
    "try { await program.parseAsync(process.argv.slice(1).filter((a) => a !== '--'), { from: 'user' }); } finally { await cleanup.run(); }",
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', 'kme', 'serve', '--dir', cliDir, '--rate-bps', '100000', '--json'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let errText = '';
  child.stderr.on('data', (c: Buffer) => (errText += c.toString()));
  const line = await new Promise<string>((res, rej) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) res(out.slice(0, nl));
    });
    void exited.then((code) => rej(new Error(`kme serve exited ${code}: ${errText}`)));
  });
  const d = JSON.parse(line) as { kmeA: { url: string }; kmeB: { url: string }; ca: string; saeCerts: Record<string, { cert: string; key: string }>; rate: { rateBps: number } };
  assert.equal(d.rate.rateBps, 100000);
  assert.ok(d.saeCerts['sae-controller'] && d.saeCerts['sae-node-esp32-a']);
  assert.doesNotMatch(line, /PRIVATE KEY/);
  const c = new KmeClient({ url: d.kmeA.url, cert: readFileSync(d.saeCerts['sae-controller'].cert), key: readFileSync(d.saeCerts['sae-controller'].key), ca: readFileSync(d.ca) });
  const st = await c.status('sae-node-esp32-a');
  assert.equal(st.source_KME_ID, 'kme-a');
  c.close();
  child.kill('SIGTERM');
  assert.equal(await exited, 0, errText);
  await assert.rejects(fetch(d.kmeA.url.replace('https', 'http')), 'port closed after SIGTERM');
});
