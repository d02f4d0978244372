// Test helpers for external services (real processes, never mocks), and the project rule for a missing one:
// under CI (CI=true) the test fails and says how .ci/run installs it; elsewhere it is skipped.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { haveTool } from '../net/exec.js';

const INSTALL_HINTS: Record<string, string> = {
  'victoria-metrics': 'apt-get install victoria-metrics',
  'libmbedtls-dev': 'apt-get install libmbedtls-dev (then npm run build:firmware builds firmware/build/qslab-node-mbedtls)',
  sshd: 'apt-get install openssh-server openssh-client (the test starts its own sshd as root on 127.0.0.1)',
};

/**
 * Returns true when the service is available. Otherwise: under CI=true it throws (the test fails with a message
 * naming the install step); elsewhere it skips the test and returns false.
 */
export function requireService(t: TestContext, name: string, available: boolean): boolean {
  if (available) return true;
  const reason = `${name} not found; .ci/run installs it with ${INSTALL_HINTS[name] ?? `apt-get install ${name}`}`;
  if (process.env.CI === 'true') throw new Error(reason);
  t.skip(reason);
  return false;
}

/**
 * Finds an executable: $QSLAB_<NAME> when set (only there: QSLAB_VICTORIA_METRICS=/nonexistent simulates a
 * missing service), else /usr/bin, then $PATH.
 */
export function findExecutable(name: string): string | null {
  const override = process.env[`QSLAB_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
  const candidates = override
    ? [override]
    : [`/usr/bin/${name}`, ...(process.env.PATH ?? '').split(delimiter).map((d) => d && join(d, name))];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Children still alive when the test process ends are killed: on exit, and on SIGINT/SIGTERM (which would
// otherwise end the process without an 'exit' event), after which the signal takes its default course.
const live = new Set<ChildProcess>();
const tempRoots = new Set<string>();
function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  for (const dir of tempRoots) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, function onSignal() {
    killAll();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  });
}

export interface VictoriaMetrics {
  url: string;          // http://127.0.0.1:<port>
  port: number;
  dataDir: string;      // -storageDataPath (inside a temp dir removed by stop())
  /** Stops the process (SIGTERM, SIGKILL after 10 s) and removes the data. Idempotent. */
  stop(): Promise<void>;
  /** Stops the process but keeps the data (an outage). */
  halt(): Promise<void>;
  /** Starts it again on the same port and data (halting first if it runs). */
  restart(): Promise<void>;
  /** True while the process runs. */
  running(): boolean;
}

/**
 * Starts /usr/bin/victoria-metrics (v1.79 flags) on a free loopback port with its own temp data dir and waits until
 * /health answers. Returns null when the binary is missing (pair with requireService).
 */
export async function startVictoriaMetrics(): Promise<VictoriaMetrics | null> {
  const bin = findExecutable('victoria-metrics');
  if (!bin) return null;
  const root = mkdtempSync(join(tmpdir(), 'qslab-vm-'));
  tempRoots.add(root);
  const dataDir = join(root, 'data');
  const logFile = join(root, 'vm.log');
  let port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let removed = false;

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, 'a');
    const proc = spawn(bin, [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${dataDir}`,
      '-retentionPeriod=100y',
      '-loggerLevel=ERROR',
      '-search.disableCache', // exports right after writes must not see cached results
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    child = proc;
    live.add(proc);
    exited = new Promise<void>((resolve) => proc.once('exit', () => {
      live.delete(proc);
      if (child === proc) child = null;
      resolve();
    }));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child !== proc) {
        const tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
        throw new Error(`victoria-metrics exited during start on port ${port}:\n${tail}`);
      }
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
        if (res.ok && (await res.text()).trim() === 'OK') return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(`victoria-metrics did not answer /health on port ${port} within 15 s`);
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM'); // graceful: VictoriaMetrics flushes its in-memory data to disk
    const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };

  try {
    await launch();
  } catch (e) {
    // the port may have been taken between freePort() and the bind: one more try on another port
    await halt();
    port = await freePort();
    try {
      await launch();
    } catch (e2) {
      await halt();
      rmSync(root, { recursive: true, force: true });
      tempRoots.delete(root);
      throw new Error(`${(e as Error).message}\n${(e2 as Error).message}`);
    }
  }

  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    running: () => child !== null,
    halt,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      if (!removed) {
        removed = true;
        rmSync(root, { recursive: true, force: true });
        tempRoots.delete(root);
      }
    },
  };
}

export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/** Makes recently ingested samples searchable (VictoriaMetrics buffers them in memory first). */
export async function vmForceFlush(url: string): Promise<void> {
  const res = await fetch(`${url}/internal/force_flush`);
  await res.text();
  if (!res.ok) throw new Error(`victoria-metrics force_flush: HTTP ${res.status}`);
}

/** GET /api/v1/export for a series selector, e.g. {__name__=~"qslab_op_.*"}; one JSON object per line. */
export async function vmExport(url: string, match: string): Promise<ExportedSeries[]> {
  const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`);
  const text = await res.text();
  if (!res.ok) throw new Error(`victoria-metrics export: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ExportedSeries);
}

/** Samples per metric name (sum of `values` lengths over all series of that name). */
export function countByMetric(series: ExportedSeries[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of series) {
    const name = s.metric.__name__ ?? '';
    out.set(name, (out.get(name) ?? 0) + s.values.length);
  }
  return out;
}

/**
 * Samples of one metric name, waiting for ingestion to become visible: force_flush + export until the count
 * equals `expected` and stays there for `settleMs`, or until the deadline; returns the last count seen (the
 * caller asserts). A fresh series can take ~1 s to appear in v1.79 even after force_flush.
 */
export async function vmWaitForCount(
  url: string, metric: string, expected: number, opts: { timeoutMs?: number; settleMs?: number } = {},
): Promise<number> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const settle = opts.settleMs ?? 300;
  const count = async () => {
    await vmForceFlush(url);
    return countByMetric(await vmExport(url, `{__name__=${JSON.stringify(metric)}}`)).get(metric) ?? 0;
  };
  let n = await count();
  while (Date.now() < deadline) {
    if (n === expected) {
      await sleep(settle);
      const again = await count();
      if (again === n) return n;
      n = again;
      continue;
    }
    if (n > expected) return n;
    await sleep(100);
    n = await count();
  }
  return n;
}

/** Kernel networking tests need root (CAP_NET_ADMIN), iproute2 and nftables: skipped elsewhere, failing under CI. */
export function needRoot(t: TestContext): boolean {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && haveTool('ip') && haveTool('tc')) return requireService(t, 'nftables', haveTool('nft'));
  const reason = 'needs root (CAP_NET_ADMIN) and iproute2 for namespaces, veth, tc and nftables';
  if (process.env.CI === 'true') throw new Error(`${reason}; CI runs as root`);
  t.skip(reason);
  return false;
}

export interface Sshd {
  port: number;
  /** Client key the server accepts (for root). */
  identity: string;
  /** known_hosts holding this server's key for [127.0.0.1]:port. */
  knownHosts: string;
  /** Host public key line ("ssh-ed25519 AAAA..."). */
  hostKey: string;
  root: string;
  stop(): Promise<void>;
}

/**
 * A real OpenSSH server on 127.0.0.1 (a stand-in for a Raspberry Pi's sshd), key login for root only, its own
 * host and client keys in a temp dir. Needs root (privilege separation) and openssh-server; null otherwise.
 */
export async function startSshd(): Promise<Sshd | null> {
  const sshd = ['/usr/sbin/sshd', findExecutable('sshd')].find((c): c is string => !!c && (() => { try { accessSync(c, constants.X_OK); return true; } catch { return false; } })());
  const keygen = findExecutable('ssh-keygen');
  if (!sshd || !keygen || !findExecutable('ssh') || process.getuid?.() !== 0) return null;
  const root = mkdtempSync(join(tmpdir(), 'qslab-sshd-'));
  tempRoots.add(root);
  const run = (cmd: string, args: string[]) => new Promise<void>((res, rej) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', rej);
    c.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'qslab-test-host', '-f', join(root, 'host_ed25519')]);
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'qslab-test-client', '-f', join(root, 'client_ed25519')]);
  const { mkdirSync, writeFileSync, chmodSync } = await import('node:fs');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory sshd insists on
  writeFileSync(join(root, 'authorized_keys'), readFileSync(join(root, 'client_ed25519.pub')));
  chmodSync(join(root, 'authorized_keys'), 0o600);
  const port = await freePort();
  const hostKey = readFileSync(join(root, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(root, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  writeFileSync(join(root, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(root, 'host_ed25519')}`, `PidFile ${join(root, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(root, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'PrintMotd no', '',
  ].join('\n'));
  const child = spawn(sshd, ['-D', '-e', '-f', join(root, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let log = '';
  child.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
  const { connect } = await import('node:net');
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited at start (${child.exitCode}): ${log.trim()}`);
    const ok = await new Promise<boolean>((res) => {
      const sock = connect(port, '127.0.0.1', () => { sock.destroy(); res(true); });
      sock.on('error', () => res(false));
    });
    if (ok) break;
    if (Date.now() - t0 > 10_000) throw new Error(`sshd did not listen on ${port} within 10 s: ${log.trim()}`);
    await sleep(50);
  }
  return {
    port, root, hostKey, identity: join(root, 'client_ed25519'), knownHosts: join(root, 'known_hosts'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('close', r));
        child.kill('SIGTERM');
        await done;
      }
      live.delete(child);
      rmSync(root, { recursive: true, force: true });
      tempRoots.delete(root);
    },
  };
}
