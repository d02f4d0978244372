// `qslab flash` on an inline virtual rig of two nodes (flash files in a temp dir): a variant build (another build
// hash, linked from the firmware's objects) is written through the emulated ESP32 ROM bootloader and both nodes
// report its hash; a second run skips them; --force reflashes; a corrupted flash file makes hello fail with a
// message naming the file, and flashing recovers it; an MD5 mismatch fails clearly and a second flash recovers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, virtualFlashFile } from '../paths.js';
import { APP_OFFSET, makeVirtualImage, readFlashApp } from '../flash/image.js';
import { flashRig, type FlashRow } from '../flash/flasher.js';
import { bringUpAll, shutDown } from '../rig/strategy.js';
import type { Rig } from '../config/rig.js';
import { loadRig } from '../config/rig.js';

const CLI = join(ROOT, 'dist/controller/cli.js');
const FW = join(ROOT, 'firmware');

/** A variant of the node binary with another build hash: build_info.c recompiled, linked with the built objects. */
export function buildVariant(hash: string, out: string): string {
  const obj = join(FW, 'build', 'obj');
  const objs: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.o') && e.name !== 'build_info.o') objs.push(p);
    }
  };
  for (const d of ['core', 'crypto', 'ports']) walk(join(obj, d));
  const cflags = readFileSync(join(FW, 'build', 'flags.txt'), 'utf8').trim().split(/\s+/);
  const cc = cflags.shift()!;
  const bi = `${out}.build_info.o`;
  execFileSync(cc, [...cflags, `-DQS_BUILD_HASH="${hash}"`, '-c', join(FW, 'core', 'build_info.c'), '-o', bi]);
  execFileSync(cc, ['-std=c11', '-O2', '-pthread', '-o', out, ...objs.filter((o) => !o.includes('/crypto/') || o.endsWith('openssl.o')), bi, '-lcrypto', '-pthread']);
  return out;
}

function qslab(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'qslab-flash-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const flashDir = join(dir, 'flash');
const rigFile = join(dir, 'rig.yaml');
writeFileSync(rigFile, 'name: flashtest\nnodes:\n  - { name: fa, kind: virtual, board: esp32 }\n  - { name: fb, kind: virtual, board: esp32 }\n');
const rig: Rig = loadRig(rigFile).value;
const VARIANT = 'f1a5e0000000beef';
const VARIANT2 = 'f1a5e0000000c0de';
const env = { QSLAB_FLASH_DIR: flashDir };

type Out = { nodes: FlashRow[]; image: { build: string } };

test('flash: a new build goes to both nodes through the ROM bootloader; a second run skips; --force reflashes', async () => {
  const img = join(dir, 'variant.qsimg');
  const v = makeVirtualImage(buildVariant(VARIANT, join(dir, 'qslab-node-variant')));
  assert.equal(v.hash, VARIANT);
  writeFileSync(img, v.bytes);
  const current = makeVirtualImage(join(FW, 'build', 'qslab-node')).hash;

  const r1 = await qslab(['flash', '--rig', rigFile, '--image', img, '--json'], env);
  assert.equal(r1.code, 0, r1.stderr + r1.stdout);
  const j1 = JSON.parse(r1.stdout) as Out;
  assert.equal(j1.image.build, VARIANT);
  assert.equal(j1.nodes.length, 2);
  for (const n of j1.nodes) {
    assert.equal(n.result, 'flashed', JSON.stringify(n));
    assert.equal(n.before, current, 'a fresh flash file starts with the current build');
    assert.equal(n.after, VARIANT);
    assert.ok(n.bytesPerS! > 0 && n.bytesPerS! <= 92160 * 1.05, `throughput ${n.bytesPerS} B/s within the 921600-baud line rate`);
    console.log(`flash ${n.node}: ${n.bytes} B in ${n.ms} ms, ${n.bytesPerS} B/s`);
  }
  for (const node of ['fa', 'fb']) {
    const app = readFlashApp(virtualFlashFile('flashtest', node, flashDir));
    assert.ok(app.ok && app.hash === VARIANT);
  }

  // The flash files are what the nodes boot from elsewhere too (rig check / run).
  const up = await bringUpAll(rig, undefined, { flashFile: (n) => virtualFlashFile('flashtest', n, flashDir) });
  try {
    assert.equal(up.failed.length, 0);
    assert.deepEqual(up.ready.map((n) => n.hello.build), [VARIANT, VARIANT]);
  } finally {
    await shutDown(up.ready);
  }
  const chk = await qslab(['rig', 'check', rigFile, '--json'], env);
  assert.equal(chk.code, 0, chk.stderr);
  assert.deepEqual((JSON.parse(chk.stdout) as { nodes: { build: string }[] }).nodes.map((n) => n.build), [VARIANT, VARIANT]);

  const r2 = await qslab(['flash', '--rig', rigFile, '--image', img, '--json'], env);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual((JSON.parse(r2.stdout) as Out).nodes.map((n) => n.result), ['skipped', 'skipped']);

  const r3 = await qslab(['flash', '--rig', rigFile, '--image', img, '--force', '--node', 'fb'], env);
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(r3.stdout, /fb\s+f1a5e0000000beef -> f1a5e0000000beef .* flashed/);
  assert.doesNotMatch(r3.stdout, /^fa /m);
});

test('flash: a corrupted flash file fails hello naming the file; flashing recovers the node', async () => {
  const file = virtualFlashFile('flashtest', 'fa', flashDir);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(16, 0x00), 0, 16, APP_OFFSET + 5000);
  closeSync(fd);
  const chk = await qslab(['rig', 'check', rigFile], env);
  assert.equal(chk.code, 1);
  assert.match(chk.stdout, /✗ fa .*no valid application in flash: .*fa\.bin @0x10000: SHA-256 mismatch/);
  assert.match(chk.stdout, /✓ fb/);

  const r = await qslab(['flash', '--rig', rigFile, '--image', join(dir, 'variant.qsimg'), '--json', '--node', 'fa'], env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const n = (JSON.parse(r.stdout) as Out).nodes[0]!;
  assert.equal(n.result, 'flashed');
  assert.equal(n.before, null);
  assert.equal(n.after, VARIANT);
});

test('flash: an MD5 mismatch fails clearly; flashing again recovers', async () => {
  const v2 = makeVirtualImage(buildVariant(VARIANT2, join(dir, 'qslab-node-variant2')));
  const rows = await flashRig({ rig, nodes: ['fa'], image: v2, flashDir, flasher: { onRom: (emu) => { emu.corruptMd5 = true; } } });
  assert.equal(rows[0]!.result, 'failed');
  assert.match(rows[0]!.error!, /fa: flashing failed: MD5 mismatch: flash has [0-9a-f]{32}, image has [0-9a-f]{32}/);
  const again = await flashRig({ rig, nodes: ['fa'], image: v2, flashDir, force: true });
  assert.equal(again[0]!.result, 'flashed', again[0]!.error);
  assert.equal(again[0]!.after, VARIANT2);
});

test('flash: bad input exits 2; a serial ESP32 node given a .qsimg and a Pi without deploy: fail (exit 1)', async () => {
  const r = await qslab(['flash', '--rig', rigFile, '--node', 'nope'], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--node: no node "nope"/);
  const m = await qslab(['flash', '--rig', rigFile, '--image', join(dir, 'missing.qsimg')], env);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /--image: .*missing\.qsimg/);
  const serial = join(dir, 'serial.yaml');
  writeFileSync(serial, 'name: serialtest\nnodes:\n  - { name: s1, kind: serial, board: esp32, port: /dev/serial/by-id/usb-nothing-here }\n  - { name: p1, kind: serial, board: rpi4, port: /dev/serial/by-id/usb-nothing-either }\n');
  const s = await qslab(['flash', '--rig', serial, '--json'], env);
  assert.equal(s.code, 1);
  const rows = (JSON.parse(s.stdout) as Out).nodes;
  assert.match(rows[0]!.error!, /a serial esp32 node needs an ESP-IDF app image \(\.bin, magic 0xE9\).*not a \.qsimg/);
  assert.match(rows[1]!.error!, /a Raspberry Pi node is flashed over ssh: add deploy: \{method: rpi-ssh/);
  const h = await qslab(['flash', '--help']);
  assert.match(h.stdout, /Serial Raspberry Pi nodes \(deploy: \{method: rpi-ssh/);
});
