// Flashing a Raspberry Pi node: the POSIX build is deployed over ssh, built on the Pi and run as a service on the
// Pi's serial line (rig: nodes[].deploy, method rpi-ssh). Steps, each one ssh call:
//   upload   the firmware sources (a tar of firmware/ without build/ and ports/esp32) into <dir>/src, replacing the
//            previous tree (a file deleted here must not stay behind: the Makefile builds what it finds);
//   build    `make` on the Pi (ports/posix/qslab-pi-service.sh build), which prints the build hash it made;
//   install  the binary atomically into <dir>/bin and (re)start the service: systemd unit qslab-node.service, or a
//            pid-file supervisor where there is no systemd (service: supervise).
// Why build on the Pi rather than cross-compile here: the node links the Pi's own libcrypto (OpenSSL ABI of the
// Pi's OS release), and the build hash covers sources + flags, so the same tree gives the same hash on both
// sides; the controller knows what the Pi will report before it uploads anything (`make -s print-hash`).
//
// ssh always hands the remote side one command string for its shell, so "argument arrays only" means: our argv
// to ssh is an array (execFile-style spawn, no local shell), and every remote word is single-quoted here after
// the rig schema has already restricted it to a safe alphabet (config/rig.ts rpiSshDeploy). Host keys are always
// checked (StrictHostKeyChecking=yes, BatchMode): an unknown Pi is an error with the command that fixes it.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RpiSshDeploy } from '../config/rig.js';
import { ROOT } from '../paths.js';

export const SERVICE_SCRIPT = 'ports/posix/qslab-pi-service.sh';
const FIRMWARE = join(ROOT, 'firmware');

export class RpiSshError extends Error {}

/** Single-quotes one word for a POSIX shell. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

export interface SshOptions {
  /** ssh executable (default: ssh on PATH). */
  ssh?: string;
  /** Connect timeout in seconds (default 10). */
  connectTimeoutS?: number;
}

/** The argv (after the ssh executable) that runs `remote` (words, quoted here) on the Pi. */
export function sshArgv(d: RpiSshDeploy, remote: string[], o: SshOptions = {}): string[] {
  const argv = [
    '-p', String(d.ssh_port),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `ConnectTimeout=${o.connectTimeoutS ?? 10}`,
    '-o', 'ServerAliveInterval=10',
    '-o', 'LogLevel=ERROR',
  ];
  if (d.identity) argv.push('-o', 'IdentitiesOnly=yes', '-i', expandHome(d.identity));
  if (d.known_hosts) argv.push('-o', `UserKnownHostsFile=${expandHome(d.known_hosts)}`);
  argv.push('-l', d.user, '--', d.host.replace(/^\[|\]$/g, ''), remote.map(shQuote).join(' '));
  return argv;
}

/** What went wrong, in words a lab engineer can act on, from ssh's exit code and stderr. */
export function diagnoseSsh(d: RpiSshDeploy, code: number | null, stderr: string): string {
  const where = `${d.user}@${d.host}:${d.ssh_port}`;
  const kh = d.known_hosts ? expandHome(d.known_hosts) : '~/.ssh/known_hosts';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(stderr)) {
    return `${where}: the Pi's host key is not in ${kh} (or changed); check its fingerprint on the Pi, then: ssh-keyscan -p ${d.ssh_port} ${d.host} >> ${kh}`;
  }
  if (/Permission denied/i.test(stderr)) {
    return `${where}: key login refused; install the controller's key on the Pi: ssh-copy-id -p ${d.ssh_port}${d.identity ? ` -i ${d.identity}` : ''} ${d.user}@${d.host}`;
  }
  if (/Connection refused/i.test(stderr)) return `${where}: connection refused: is sshd running on the Pi (sudo systemctl enable --now ssh) and is ssh_port right?`;
  if (/timed out|No route to host|Could not resolve|Name or service not known/i.test(stderr)) {
    return `${where}: the Pi cannot be reached (${stderr.trim().split('\n').pop()}); is it powered, on the network, and is host right?`;
  }
  const tail = stderr.trim().split('\n').slice(-3).join(' | ');
  return `${where}: ${code === 255 ? 'ssh failed' : `remote command failed (exit ${code})`}${tail ? `: ${tail}` : ''}`;
}

export interface SshResult { stdout: string; stderr: string; ms: number }

/** Runs one remote command; rejects with a diagnosed RpiSshError. */
export function runSsh(d: RpiSshDeploy, remote: string[], o: SshOptions & { input?: Buffer; timeoutMs?: number } = {}): Promise<SshResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(o.ssh ?? 'ssh', sshArgv(d, remote, o), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGTERM'), o.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RpiSshError(`cannot run ssh: ${e.message} (install openssh-client)`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) return resolve({ stdout, stderr, ms: performance.now() - t0 });
      if (signal) return reject(new RpiSshError(`${d.user}@${d.host}: "${remote[0]} …" did not finish within ${Math.round((o.timeoutMs ?? 300_000) / 1000)} s`));
      reject(new RpiSshError(diagnoseSsh(d, code, stderr)));
    });
    child.stdin.on('error', () => {}); // ssh may exit before reading all input; its exit code tells
    child.stdin.end(o.input ?? Buffer.alloc(0));
  });
}

function runLocal(cmd: string, args: string[], cwd: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${Buffer.concat(err).toString().trim()}`))));
  });
}

export interface SourceBundle {
  /** tar of the firmware sources the Pi builds. */
  tar: Buffer;
  /** The build hash the Pi's build of these sources reports (same sources + flags → same hash). */
  hash: string;
}

/** The firmware tree as the Pi gets it, and the hash its build will carry. */
export async function sourceBundle(firmwareDir = FIRMWARE): Promise<SourceBundle> {
  const hash = (await runLocal('make', ['-s', '--no-print-directory', 'print-hash'], firmwareDir)).toString().trim();
  if (!/^[0-9a-f]{16}$/.test(hash)) throw new Error(`make print-hash in ${firmwareDir} gave "${hash}", not a build hash`);
  const tar = await runLocal('tar', ['-c', '--exclude=./build', '--exclude=./ports/esp32', '--owner=0', '--group=0', '--numeric-owner', '-f', '-', '.'], firmwareDir);
  return { tar, hash };
}

export interface RpiDeployResult {
  /** Build hash the Pi's make reported. */
  hash: string;
  pid: number | null;
  uploadMs: number;
  buildMs: number;
  installMs: number;
}

export interface RpiNodeSpec { name: string; board: string; baud: number; deploy: RpiSshDeploy }

export class RpiSshFlasher {
  constructor(readonly opts: SshOptions & { onStep?: (node: string, step: string) => void } = {}) {}

  private script(d: RpiSshDeploy): string {
    return `${d.dir}/src/${SERVICE_SCRIPT}`;
  }

  private nodeArgs(n: RpiNodeSpec): string[] {
    return ['--dir', n.deploy.dir, '--device', n.deploy.device, '--board', n.board, '--name', n.name, '--baud', String(n.baud), '--service', n.deploy.service];
  }

  /** Upload, build and (re)start; the caller then checks hello on the node's serial port. */
  async deploy(n: RpiNodeSpec, bundle: SourceBundle): Promise<RpiDeployResult> {
    const d = n.deploy;
    const step = (s: string) => this.opts.onStep?.(n.name, s);
    step(`upload ${bundle.tar.length} bytes to ${d.host}:${d.dir}/src`);
    // A fixed command; the only variable word is the schema-checked, quoted dir.
    const q = shQuote(d.dir);
    const upload = await runSsh(d, ['sh', '-c', `set -e; umask 022; mkdir -p ${q}; rm -rf ${q}/src.new; mkdir ${q}/src.new; tar -x -m -f - -C ${q}/src.new; rm -rf ${q}/src; mv ${q}/src.new ${q}/src`], { ...this.opts, input: bundle.tar, timeoutMs: 120_000 });
    step('build on the Pi');
    const build = await runSsh(d, ['sh', this.script(d), 'build', '--dir', d.dir], { ...this.opts, timeoutMs: 900_000 });
    const hash = /^HASH ([0-9a-f]{16})$/m.exec(build.stdout)?.[1];
    if (!hash) throw new RpiSshError(`${n.name}: the Pi's build printed no build hash (stdout: ${JSON.stringify(build.stdout.slice(-200))})`);
    step(`install and restart (${d.service})`);
    const inst = await runSsh(d, ['sh', this.script(d), 'install', ...this.nodeArgs(n)], { ...this.opts, timeoutMs: 60_000 });
    const pid = /^RUNNING (\d+)$/m.exec(inst.stdout)?.[1];
    return { hash, pid: pid ? Number(pid) : null, uploadMs: upload.ms, buildMs: build.ms, installMs: inst.ms };
  }

  async status(n: RpiNodeSpec): Promise<{ running: boolean; pid: number | null }> {
    const r = await runSsh(n.deploy, ['sh', this.script(n.deploy), 'status', '--dir', n.deploy.dir, '--service', n.deploy.service], { ...this.opts, timeoutMs: 30_000 });
    const m = /^RUNNING (\d*)$/m.exec(r.stdout);
    return { running: !!m, pid: m?.[1] ? Number(m[1]) : null };
  }

  /** Stops the service and removes what deploy installed (unit file, <dir>). */
  async uninstall(n: RpiNodeSpec): Promise<void> {
    await runSsh(n.deploy, ['sh', this.script(n.deploy), 'uninstall', '--dir', n.deploy.dir, '--service', n.deploy.service], { ...this.opts, timeoutMs: 60_000 });
  }
}
