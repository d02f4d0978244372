// Where things live, relative to the package root (works from controller/ sources and dist/ builds).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'firmware'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('qslab: cannot find the package root (package.json + firmware/)');
    dir = up;
  }
}

export const ROOT = findRoot();
/** The POSIX node firmware (OpenSSL crypto port); $QSLAB_NODE_BINARY overrides it (e.g. the mbedTLS build). */
export const NODE_BINARY = process.env.QSLAB_NODE_BINARY || join(ROOT, 'firmware', 'build', 'qslab-node');
/** The same firmware with the mbedTLS crypto port (built by build-firmware only when libmbedtls-dev is present). */
export const NODE_BINARY_MBEDTLS = join(ROOT, 'firmware', 'build', 'qslab-node-mbedtls');
export const DEFAULT_RIG = join(ROOT, 'rigs', 'virtual.yaml');
export const DEFAULT_CAMPAIGN = join(ROOT, 'fixtures', 'campaigns', 'quickstart.yaml');
/**
 * Virtual nodes' flash files: <dir>/<rig name>/<node>.bin (4 MiB, app image at 0x10000; see flash/image.ts).
 * $QSLAB_FLASH_DIR overrides the directory. A virtual node whose flash file exists boots from it.
 */
export function flashDir(): string {
  return resolve(process.env.QSLAB_FLASH_DIR || join(ROOT, '.qslab', 'flash'));
}
export function virtualFlashFile(rig: string, node: string, dir = flashDir()): string {
  return join(dir, rig, `${node}.bin`);
}
/** The POSIX node firmware as a virtual flash image (written by build-firmware). */
export const NODE_IMAGE = join(ROOT, 'firmware', 'build', 'qslab-node.qsimg');
export const REPORTS_DIR = join(ROOT, 'reports', 'out');

export function controllerVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** Resolves a path from a rig/campaign file relative to the cwd first, then the package root. */
export function resolveUserPath(p: string): string {
  const fromCwd = resolve(p);
  if (existsSync(fromCwd)) return fromCwd;
  const fromRoot = resolve(ROOT, p);
  return existsSync(fromRoot) ? fromRoot : fromCwd;
}
