// Runs ip / tc / nft with argument arrays only (execFile, never a shell), with a dry-run mode that records the
// exact argv instead of running it, and validation of every name that reaches a command line.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Tool = 'ip' | 'tc' | 'nft' | 'ss';

export const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
/** Namespaces qslab makes: `qslab-` prefix (the sweep in state.ts removes exactly these). */
export const NETNS_RE = /^qslab-[A-Za-z0-9_.-]{1,48}$/;
/** nftables tables qslab makes: `qslab_` prefix. */
export const NFT_TABLE_RE = /^qslab_[A-Za-z0-9_]{1,48}$/;
/** Run ids as they appear inside names (`qslab-<run>-<n>`, `qslab_<run>`). */
export const RUN_RE = /^[A-Za-z0-9]{1,24}$/;

export class NetNameError extends Error {}

export function checkIfName(name: string): string {
  if (!IFNAME_RE.test(name) || name === '.' || name === '..') throw new NetNameError(`invalid interface name ${JSON.stringify(name)} (1-15 of A-Z a-z 0-9 _ . -)`);
  return name;
}
export function checkNetns(name: string): string {
  if (!NETNS_RE.test(name)) throw new NetNameError(`invalid namespace name ${JSON.stringify(name)} (qslab namespaces are "qslab-" + 1-48 of A-Z a-z 0-9 _ . -)`);
  return name;
}
export function checkTable(name: string): string {
  if (!NFT_TABLE_RE.test(name)) throw new NetNameError(`invalid nft table name ${JSON.stringify(name)} ("qslab_" + 1-48 of A-Z a-z 0-9 _)`);
  return name;
}
export function checkRun(run: string): string {
  if (!RUN_RE.test(run)) throw new NetNameError(`invalid run id ${JSON.stringify(run)} (1-24 letters or digits)`);
  return run;
}

export interface ExecResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  dryRun: boolean;
}

export class NetCommandError extends Error {
  constructor(readonly result: ExecResult) {
    super(`${result.argv.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

export interface RunOpts {
  /** Do not throw on a non-zero exit (the result carries the code). */
  allowFail?: boolean;
  /** Read-only query: runs even in dry-run mode (listing state is harmless and needed to plan). */
  query?: boolean;
  timeoutMs?: number;
}

const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();
function resolveTool(tool: Tool): string {
  const hit = resolved.get(tool);
  if (hit) return hit;
  const override = process.env[`QSLAB_${tool.toUpperCase()}`];
  const dirs = override ? [] : [...SBIN, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const c of override ? [override] : dirs.map((d) => join(d, tool))) {
    try {
      accessSync(c, constants.X_OK);
      resolved.set(tool, c);
      return c;
    } catch {
      // next
    }
  }
  return tool; // let execFile report ENOENT
}

/** True when the tool is installed (for `net probe`). */
export function haveTool(tool: Tool): boolean {
  return resolveTool(tool) !== tool;
}

export interface NetExecOptions {
  dryRun?: boolean;
  /** Called with every argv (run or recorded), e.g. to print `--dry-run` plans or a verbose log. */
  log?: (argv: string[], dryRun: boolean) => void;
}

/** Executes (or records, in dry-run mode) ip/tc/nft commands. Every argv is kept in `history`. */
export class NetExec {
  readonly dryRun: boolean;
  readonly history: string[][] = [];
  private readonly log: ((argv: string[], dryRun: boolean) => void) | undefined;

  constructor(opts: NetExecOptions = {}) {
    this.dryRun = !!opts.dryRun;
    this.log = opts.log;
  }

  async run(tool: Tool, args: readonly string[], opts: RunOpts = {}): Promise<ExecResult> {
    for (const a of args) {
      if (typeof a !== 'string') throw new TypeError(`argv element is not a string: ${String(a)}`);
      if (a.includes('\0')) throw new NetNameError('argv element contains NUL');
    }
    const argv = [tool, ...args];
    const dry = this.dryRun && !opts.query;
    if (!opts.query) this.history.push(argv);
    this.log?.(argv, dry);
    if (dry) return { argv, code: 0, stdout: '', stderr: '', dryRun: true };
    const result = await new Promise<ExecResult>((resolve) => {
      execFile(resolveTool(tool), [...args], { timeout: opts.timeoutMs ?? 15_000, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        const code = !e ? 0 : typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1;
        resolve({ argv, code, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') || (e && !stderr ? e.message : ''), dryRun: false });
      });
    });
    if (result.code !== 0 && !opts.allowFail) throw new NetCommandError(result);
    return result;
  }

  ip(args: readonly string[], opts?: RunOpts): Promise<ExecResult> {
    return this.run('ip', args, opts);
  }
  tc(args: readonly string[], opts?: RunOpts): Promise<ExecResult> {
    return this.run('tc', args, opts);
  }
  /** nft, inside namespace `ns` when given (`ip netns exec <ns> nft ...`). */
  nft(args: readonly string[], ns?: string, opts?: RunOpts): Promise<ExecResult> {
    if (ns) return this.run('ip', ['netns', 'exec', checkNetns(ns), 'nft', ...args], opts);
    return this.run('nft', args, opts);
  }
}

/** `ip -n <ns>` / `tc -n <ns>` prefix (empty for the root namespace). */
export function nsArgs(ns: string | undefined): string[] {
  return ns ? ['-n', checkNetns(ns)] : [];
}

/** Formats an argv for display only (single-quotes what a shell would split); never executed. */
export function showArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
