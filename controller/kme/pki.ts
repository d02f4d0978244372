// PKI for an emulated KME pair: one CA, a server certificate per KME (SAN 127.0.0.1, ::1, localhost) and a client
// certificate per SAE (subject CN = the SAE ID, also given as a DNS SAN). Made with /usr/bin/openssl (argument arrays,
// never a shell). Directory mode 0700, private keys 0600. Idempotent: files that exist and check out (signed by the
// CA, key matches, right name, not about to expire) are kept; anything missing or wrong is (re)made.
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { accessSync, constants } from 'node:fs';

/** SAE and KME IDs: safe as file names and in an X.509 subject. */
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface CertPaths {
  cert: string;
  key: string;
}

export interface KmePki {
  dir: string;
  /** CA certificate (PEM): trust anchor for clients and servers. */
  ca: string;
  /** CA private key: stays in dir, only needed to issue more certificates. */
  caKey: string;
  kmes: Record<string, CertPaths>;
  saes: Record<string, CertPaths>;
  /** Files (re)made by this call, for the log; empty when everything was already there. */
  created: string[];
}

export interface PkiOptions {
  dir: string;
  kmeIds: string[];
  saeIds: string[];
  /** Server certificate hosts (SANs); default 127.0.0.1, ::1, localhost. */
  hosts?: string[];
  /** Validity of leaf certificates (days); default 825. */
  days?: number;
  openssl?: string;
}

/** $QSLAB_OPENSSL, else /usr/bin/openssl, else the first openssl on $PATH. */
export function findOpenssl(): string | null {
  const env = process.env.QSLAB_OPENSSL;
  const candidates = env ? [env] : ['/usr/bin/openssl', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'openssl'))];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;

function run(bin: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    execFile(bin, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) rej(new Error(`openssl ${args[0]} failed: ${String(stderr).trim().split('\n').slice(-3).join(' | ') || err.message}`));
      else res();
    });
  });
}

/** An empty file with mode 0600, so the key openssl writes into it is never readable by others. */
function precreatePrivate(path: string): void {
  rmSync(path, { force: true });
  closeSync(openSync(path, 'wx', 0o600));
}

function certOk(certPath: string, keyPath: string, ca: X509Certificate | null, cn: string, isCa: boolean): boolean {
  try {
    if (!existsSync(certPath) || !existsSync(keyPath)) return false;
    const x = new X509Certificate(readFileSync(certPath));
    if (Date.parse(x.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
    if (!x.checkPrivateKey(createPrivateKey(readFileSync(keyPath)))) return false;
    if (isCa) return x.ca && x.verify(x.publicKey);
    if (!ca || !x.checkIssued(ca) || !x.verify(ca.publicKey)) return false;
    return x.subject.split('\n').includes(`CN=${cn}`);
  } catch {
    return false;
  }
}

function san(host: string): string {
  return /^[0-9.]+$/.test(host) || host.includes(':') ? `IP:${host}` : `DNS:${host}`;
}

/** Creates (or checks and completes) the PKI in opts.dir. */
export async function ensurePki(opts: PkiOptions): Promise<KmePki> {
  const bin = opts.openssl ?? findOpenssl();
  if (!bin) throw new Error('openssl not found (install the openssl package, or set QSLAB_OPENSSL)');
  for (const id of [...opts.kmeIds, ...opts.saeIds]) {
    if (!ID_RE.test(id)) throw new Error(`invalid KME/SAE ID "${id}": use 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)`);
  }
  const dupes = [...opts.kmeIds, ...opts.saeIds].filter((v, i, a) => a.indexOf(v) !== i);
  if (dupes.length) throw new Error(`KME and SAE IDs must be distinct: ${[...new Set(dupes)].join(', ')}`);
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const days = String(opts.days ?? 825);
  const hosts = opts.hosts ?? ['127.0.0.1', '::1', 'localhost'];
  const created: string[] = [];

  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  let caRemade = false;
  if (!certOk(caCert, caKey, null, '', true)) {
    precreatePrivate(caKey);
    await run(bin, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc',
      '-keyout', caKey, '-out', caCert, '-days', '3650', '-sha256',
      '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-subj', '/O=qslab/CN=qslab KME CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', 'subjectKeyIdentifier=hash',
    ]);
    caRemade = true;
    created.push(caCert, caKey);
  }
  chmodSync(caKey, 0o600);
  const ca = new X509Certificate(readFileSync(caCert));

  const leaf = async (id: string, kind: 'server' | 'client'): Promise<CertPaths> => {
    const paths = { cert: join(dir, `${id}.crt`), key: join(dir, `${id}.key`) };
    if (!caRemade && certOk(paths.cert, paths.key, ca, id, false)) {
      chmodSync(paths.key, 0o600);
      return paths;
    }
    precreatePrivate(paths.key);
    const sans = kind === 'server' ? [`DNS:${id}`, ...hosts.map(san)] : [`DNS:${id}`];
    await run(bin, [
      'req', '-x509', '-CA', caCert, '-CAkey', caKey,
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc',
      '-keyout', paths.key, '-out', paths.cert, '-days', days, '-sha256',
      '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-subj', `/O=qslab/CN=${id}`,
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', `extendedKeyUsage=${kind === 'server' ? 'serverAuth' : 'clientAuth'}`,
      '-addext', `subjectAltName=${sans.join(',')}`,
    ]);
    chmodSync(paths.key, 0o600);
    if (!certOk(paths.cert, paths.key, ca, id, false)) throw new Error(`openssl made a certificate for ${id} that does not verify against ${caCert}`);
    created.push(paths.cert, paths.key);
    return paths;
  };

  const kmes: Record<string, CertPaths> = {};
  for (const id of opts.kmeIds) kmes[id] = await leaf(id, 'server');
  const saes: Record<string, CertPaths> = {};
  for (const id of opts.saeIds) saes[id] = await leaf(id, 'client');
  return { dir, ca: caCert, caKey, kmes, saes, created };
}

/** Mode bits of a path (for tests and checks). */
export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}
