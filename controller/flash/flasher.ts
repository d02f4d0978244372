// Flashing nodes. A Flasher puts a new firmware image on one node and proves it booted (hello reports the
// image's build hash). VirtualFlasher does it for a virtual node the way esptool does it for an ESP32: the node
// is powered off, its serial port then carries the ROM UART bootloader (as if GPIO0 were held low at reset:
// virtual/esp-rom.ts on the node's stable pty link, writing the node's flash file), RomClient syncs, detects the
// chip, writes the image at the app offset (MD5 verified) and ends with a reboot; the node then boots the new
// image from its flash file. Serial ESP32/ESP32-S3 nodes are flashed by EsptoolFlasher (flash/esptool.ts: DTR/RTS
// auto-reset, the same RomClient, an ESP-IDF app image at 0x10000), then their link is reopened and hello checked;
// serial Raspberry Pi nodes with `deploy: {method: rpi-ssh}` get the POSIX build over ssh (flash/rpi-ssh.ts),
// built on the Pi and restarted as a service, then hello is read on their serial port.
//
// flashRig() is `qslab flash`: per selected node, bring it up (from its flash file; made on first use from the
// current build), compare hello's build with the image's, skip when equal (unless force), else flash; nodes in
// parallel.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from '../drivers/serial-binding.js';
import type { Rig, RigNode } from '../config/rig.js';
import { bringUp, openLink, shutDown, type ReadyNode } from '../rig/strategy.js';
import { VirtualNode } from '../virtual/node.js';
import { EspRomEmulator } from '../virtual/esp-rom.js';
import { RomClient } from './rom-protocol.js';
import { APP_OFFSET, createFlashFile, readFlashApp, makeVirtualImage, readVirtualImage, VIRTUAL_FLASH_SIZE, type VirtualImage } from './image.js';
import { EsptoolFlasher, BOARD_CHIP, type EspAppImage, type EsptoolOptions } from './esptool.js';
import { RpiSshFlasher, sourceBundle, type SourceBundle, type SshOptions } from './rpi-ssh.js';
import { flashDir as defaultFlashDir, NODE_BINARY, NODE_IMAGE, virtualFlashFile } from '../paths.js';

export const SERIAL_FLASHER_MISSING = 'a serial node is flashed by esptool (ESP32) or rpi-ssh (Raspberry Pi), not by the virtual flasher';
export const RPI_DEPLOY_MISSING = 'a Raspberry Pi node is flashed over ssh: add deploy: {method: rpi-ssh, host: <pi>, user: <user>, device: /dev/ttyGS0} to the node in the rig file';

export function isEspImage(image: VirtualImage | EspAppImage): image is EspAppImage {
  return (image as EspAppImage).format === 'esp-idf';
}

export interface FlashTarget {
  spec: RigNode;
  /** The node's flash file (virtual nodes). */
  flashFile?: string;
  /** The node's stable serial path (virtual nodes: the pty link the node and the ROM share). */
  link?: string;
  /** The node as it runs now (stopped before flashing). */
  ready?: ReadyNode;
}

export interface FlashResult {
  node: string;
  before: string | null;
  after: string;
  /** Wall time of the whole flash: power off → ROM → write + MD5 → reboot → hello. */
  ms: number;
  /** Time of FLASH_BEGIN → last block → MD5 only. */
  writeMs: number;
  bytes: number;
  /** Image bytes per second over writeMs. */
  bytesPerS: number;
  baud: number;
  /** The node after the flash, booted from the new image (the caller shuts it down). */
  ready: ReadyNode;
}

export interface Flasher {
  flash(target: FlashTarget, image: VirtualImage): Promise<FlashResult>;
}

export interface VirtualFlasherOptions {
  /** ROM line rate (the emulator paces both directions); default 921600. 0: unpaced. */
  baud?: number;
  /** Test hook: fault injection on the ROM emulator before the flasher talks to it. */
  onRom?: (emu: EspRomEmulator, node: string) => void;
}

async function openPort(path: string, baudRate: number): Promise<SerialPortStream> {
  const port = new SerialPortStream({ binding: NodeLinkBinding, path, baudRate, autoOpen: false, hupcl: false });
  await new Promise<void>((res, rej) => port.open((err) => (err ? rej(err) : res())));
  port.on('error', () => {}); // the client reports it through its own close listener
  return port;
}

async function closePort(port: SerialPortStream): Promise<void> {
  if (!port.isOpen) return;
  await new Promise<void>((res) => port.close(() => res()));
}

export class VirtualFlasher implements Flasher {
  constructor(readonly opts: VirtualFlasherOptions = {}) {}

  async flash(target: FlashTarget, image: VirtualImage): Promise<FlashResult> {
    const { spec, flashFile, link } = target;
    if (spec.kind !== 'virtual') throw new Error(`${spec.name}: ${SERIAL_FLASHER_MISSING}`);
    if (!flashFile || !link) throw new Error(`${spec.name}: a virtual node needs a flash file and a stable pty link to be flashed`);
    const baud = this.opts.baud ?? 921600;
    const t0 = performance.now();
    const before = target.ready?.hello.build ?? null;
    // Power off; the ROM bootloader comes up on the same serial port (GPIO0 low at reset).
    if (target.ready) {
      await target.ready.link.close();
      await target.ready.virtual?.stop();
    }
    const emu = new EspRomEmulator({ flashFile, flashSize: VIRTUAL_FLASH_SIZE, chip: 'ESP32', baud, link, name: `esp-rom ${spec.name}` });
    this.opts.onRom?.(emu, spec.name);
    let writeMs = 0;
    try {
      const path = await emu.start();
      const port = await openPort(path, baud || 115200);
      const client = new RomClient(port, { port: `${spec.name} (${path})` });
      try {
        await client.sync();
        await client.detectChip('ESP32');
        await client.spiAttach();
        await client.spiSetParams(VIRTUAL_FLASH_SIZE);
        const w0 = performance.now();
        await client.writeFlash(image.bytes, APP_OFFSET);
        writeMs = performance.now() - w0;
        await client.flashEnd(true);
      } finally {
        client.detach();
        await closePort(port);
      }
    } catch (e) {
      if (e instanceof Error) e.message = `${spec.name}: flashing failed: ${e.message}`;
      throw e;
    } finally {
      await emu.stop();
    }
    // Reset: the node boots the new application from its flash file.
    const vn = new VirtualNode({ name: spec.name, board: spec.board, baud: spec.baud, pace: spec.pace, flashFile, link });
    let ready: ReadyNode;
    try {
      const p = await vn.start();
      const { link: nl, hello } = await openLink(spec, p);
      ready = { spec, link: nl, hello, virtual: vn };
    } catch (e) {
      await vn.stop();
      const why = vn.bootProblem ? `${vn.bootProblem}; ` : '';
      throw new Error(`${spec.name}: flashed, but the node did not come up: ${why}${(e as Error).message}`);
    }
    if (ready.hello.build !== image.hash) {
      await shutDown([ready]);
      throw new Error(`${spec.name}: flashed build ${image.hash}, but the node reports build ${ready.hello.build}`);
    }
    return {
      node: spec.name, before, after: ready.hello.build, ms: performance.now() - t0, writeMs, bytes: image.bytes.length,
      bytesPerS: writeMs > 0 ? image.bytes.length / (writeMs / 1000) : 0, baud, ready,
    };
  }
}

export interface FlashRow {
  node: string;
  kind: string;
  result: 'flashed' | 'skipped' | 'failed';
  before: string | null;
  after: string | null;
  ms: number;
  bytes?: number;
  bytesPerS?: number;
  error?: string;
  /** Something to know about a successful flash. */
  note?: string;
  /** rpi-ssh: time of each step. */
  steps?: { uploadMs: number; buildMs: number; installMs: number };
}

export interface FlashRigOptions {
  rig: Rig;
  nodes?: string[];
  /** A .qsimg for virtual nodes, an ESP-IDF app image (.bin) for serial ESP32 nodes. */
  image: VirtualImage | EspAppImage;
  force?: boolean;
  /** Root of the flash files (<dir>/<rig>/<node>.bin); default paths.flashDir(). */
  flashDir?: string;
  flasher?: VirtualFlasherOptions;
  /** Serial ESP32 nodes (reset mode, write baud, notes). */
  esptool?: EsptoolOptions;
  /** Raspberry Pi nodes (ssh executable, progress per step). */
  rpi?: SshOptions & { onStep?: (node: string, step: string) => void; bootTimeoutMs?: number };
  /** The sources Raspberry Pi nodes build (made once per flashRig when a Pi node is selected). */
  bundle?: Promise<SourceBundle>;
}

/** The image a fresh flash file starts with: the current build (qslab-node.qsimg, else made from the binary). */
export function initialImage(): VirtualImage {
  return existsSync(NODE_IMAGE) ? readVirtualImage(NODE_IMAGE) : makeVirtualImage(NODE_BINARY);
}

/** Flash file + stable link of a virtual node, the flash file created (erased + current build) on first use. */
export function ensureVirtualFlash(rig: string, node: string, dir = defaultFlashDir()): { flashFile: string; link: string } {
  const flashFile = virtualFlashFile(rig, node, dir);
  if (!existsSync(flashFile)) {
    mkdirSync(join(dir, rig), { recursive: true });
    createFlashFile(flashFile, initialImage());
  }
  return { flashFile, link: join(dir, rig, `${node}.tty`) };
}

async function flashOne(spec: RigNode, o: FlashRigOptions): Promise<FlashRow> {
  const t0 = performance.now();
  const row = (r: Omit<FlashRow, 'node' | 'kind' | 'ms'>): FlashRow => ({ node: spec.name, kind: spec.kind, ms: Math.round(performance.now() - t0), ...r });
  if (spec.kind === 'serial') return flashSerial(spec, o, row);
  const image = o.image;
  if (isEspImage(image)) return row({ result: 'failed', before: null, after: null, error: 'an ESP-IDF app image (.bin) cannot run on a virtual node: pass the .qsimg (qslab-node.qsimg) with --image' });
  let target: FlashTarget;
  try {
    const { flashFile, link } = ensureVirtualFlash(o.rig.name, spec.name, o.flashDir);
    target = { spec, flashFile, link };
  } catch (e) {
    return row({ result: 'failed', before: null, after: null, error: (e as Error).message });
  }
  // A bad app (erased or damaged image) gets no hello: flashing is how it is recovered, no need to wait for it.
  const app = readFlashApp(target.flashFile!);
  let bootError = app.ok ? undefined : app.reason;
  if (app.ok) {
    try {
      target.ready = await bringUp(spec, { flashFile: () => target.flashFile, virtual: () => ({ link: target.link }) });
    } catch (e) {
      bootError = (e as Error).message;
    }
  }
  const before = target.ready?.hello.build ?? null;
  if (target.ready && before === image.hash && !o.force) {
    await shutDown([target.ready]);
    return row({ result: 'skipped', before, after: before });
  }
  try {
    const r = await new VirtualFlasher(o.flasher).flash(target, image);
    await shutDown([r.ready]);
    return row({ result: 'flashed', before, after: r.after, bytes: r.bytes, bytesPerS: Math.round(r.bytesPerS) });
  } catch (e) {
    if (target.ready) await shutDown([target.ready]);
    const msg = (e as Error).message;
    return row({ result: 'failed', before, after: null, error: bootError ? `${msg} (before flashing: ${bootError})` : msg });
  }
}

type RowFn = (r: Omit<FlashRow, 'node' | 'kind' | 'ms'>) => FlashRow;

/**
 * A serial node: rpi boards are refused; ESP32 boards need an ESP-IDF app image. hello before (skip when it reports
 * the image's build hash, unless force; an image without a hash is always flashed), close the link, EsptoolFlasher
 * on spec.port, reopen the link and check hello (build compared when the image carries a hash).
 */
async function flashSerial(spec: Extract<RigNode, { kind: 'serial' }>, o: FlashRigOptions, row: RowFn): Promise<FlashRow> {
  if (!BOARD_CHIP[spec.board]) return flashRpi(spec, o, row);
  const image = o.image;
  if (!isEspImage(image)) {
    return row({ result: 'failed', before: null, after: null, error: `a serial ${spec.board} node needs an ESP-IDF app image (.bin, magic 0xE9) built from firmware/ports/esp32, not a .qsimg (virtual nodes only): pass it with --image` });
  }
  const { before, bootError } = await buildBefore(spec);
  if (before !== null && image.hash !== null && before === image.hash && !o.force) return row({ result: 'skipped', before, after: before });
  try {
    const r = await new EsptoolFlasher(o.esptool).write({ name: spec.name, board: spec.board, port: spec.port }, image);
    let after: string;
    let note: string | undefined;
    try {
      const { link, hello } = await openLink(spec, spec.port);
      after = hello.build;
      // The app write leaves NVS alone, so stored Wi-Fi credentials survive; say so when the node has none yet.
      if (spec.wifi) {
        const net = await link.netStatus().catch(() => undefined);
        if (net?.status === 'unconfigured') note = `no Wi-Fi credentials on the node yet: run "qslab provision --node ${spec.name}"`;
      }
      await link.close();
    } catch (e) {
      throw new Error(`${spec.name}: flashed (MD5 ok), but the node did not come up: ${(e as Error).message}`);
    }
    if (image.hash !== null && after !== image.hash) throw new Error(`${spec.name}: flashed build ${image.hash}, but the node reports build ${after}`);
    return row({ result: 'flashed', before, after, bytes: r.bytes, bytesPerS: Math.round(r.bytesPerS), ...(note ? { note } : {}) });
  } catch (e) {
    const msg = (e as Error).message;
    return row({ result: 'failed', before, after: null, error: bootError && before === null ? `${msg} (before flashing: ${bootError})` : msg });
  }
}

/** What a serial node runs before flashing: hello's build, or why it did not answer. */
async function buildBefore(spec: RigNode): Promise<{ before: string | null; bootError?: string }> {
  try {
    const ready = await bringUp(spec);
    await shutDown([ready]);
    return { before: ready.hello.build };
  } catch (e) {
    return { before: null, bootError: (e as Error).message };
  }
}

/** hello on the node's serial port, retried until the restarted service answers or the deadline passes. */
async function helloUntil(spec: RigNode & { port: string }, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const { link, hello } = await openLink(spec, spec.port);
      await link.close();
      return hello.build;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * A Raspberry Pi node: hello before (skip when it already reports the hash the Pi's build of our sources will
 * carry, unless force), upload + build + restart over ssh, then hello on the serial port must report the hash the
 * Pi's make printed.
 */
async function flashRpi(spec: Extract<RigNode, { kind: 'serial' }>, o: FlashRigOptions, row: RowFn): Promise<FlashRow> {
  const d = spec.deploy;
  if (!d) return row({ result: 'failed', before: null, after: null, error: RPI_DEPLOY_MISSING });
  let bundle: SourceBundle;
  try {
    bundle = await (o.bundle ?? sourceBundle());
  } catch (e) {
    return row({ result: 'failed', before: null, after: null, error: `cannot pack the firmware sources: ${(e as Error).message}` });
  }
  const { before, bootError } = await buildBefore(spec);
  if (before === bundle.hash && !o.force) return row({ result: 'skipped', before, after: before });
  try {
    const r = await new RpiSshFlasher(o.rpi).deploy({ name: spec.name, board: spec.board, baud: spec.baud, deploy: d }, bundle);
    let after: string;
    try {
      after = await helloUntil(spec, o.rpi?.bootTimeoutMs ?? 20_000);
    } catch (e) {
      throw new Error(`${spec.name}: built ${r.hash} and started it on ${d.host} (${d.service}), but no hello on ${spec.port}: ${(e as Error).message}`);
    }
    if (after !== r.hash) throw new Error(`${spec.name}: the Pi built ${r.hash}, but the node on ${spec.port} reports build ${after} (is ${spec.port} wired to ${d.host}:${d.device}?)`);
    const note = r.hash === bundle.hash ? undefined : `the Pi's build hash ${r.hash} differs from this tree's ${bundle.hash} (different flags on the Pi?)`;
    return row({ result: 'flashed', before, after, bytes: bundle.tar.length, ...(note ? { note } : {}),
      steps: { uploadMs: Math.round(r.uploadMs), buildMs: Math.round(r.buildMs), installMs: Math.round(r.installMs) } });
  } catch (e) {
    const msg = (e as Error).message;
    return row({ result: 'failed', before, after: null, error: bootError && before === null ? `${msg} (before flashing: ${bootError})` : msg });
  }
}

/** `qslab flash`: every selected node in parallel. */
export async function flashRig(o: FlashRigOptions): Promise<FlashRow[]> {
  const specs = o.rig.nodes.filter((n) => !o.nodes?.length || o.nodes.includes(n.name));
  if (!o.bundle && specs.some((s) => s.kind === 'serial' && !BOARD_CHIP[s.board] && s.deploy)) {
    o = { ...o, bundle: sourceBundle() };
    o.bundle!.catch(() => {}); // reported per node
  }
  return Promise.all(specs.map((s) => flashOne(s, o)));
}

export function formatFlashTable(rows: FlashRow[]): string {
  const lines = [`${'node'.padEnd(14)} ${'before'.padEnd(16)}    ${'after'.padEnd(16)} ${'time'.padStart(8)}  result`];
  for (const r of rows) {
    const rate = r.bytesPerS ? `  ${(r.bytes! / 1024).toFixed(0)} KiB at ${(r.bytesPerS / 1024).toFixed(1)} KiB/s`
      : r.steps ? `  upload ${(r.steps.uploadMs / 1000).toFixed(1)} s, build ${(r.steps.buildMs / 1000).toFixed(1)} s, restart ${(r.steps.installMs / 1000).toFixed(1)} s` : '';
    lines.push(`${r.node.padEnd(14)} ${(r.before ?? '-').padEnd(16)} -> ${(r.after ?? '-').padEnd(16)} ${`${(r.ms / 1000).toFixed(1)} s`.padStart(8)}  ${r.result}${rate}${r.error ? `: ${r.error}` : ''}${r.note ? ` (note: ${r.note})` : ''}`);
  }
  return lines.join('\n');
}
