// Rig file: what is wired where (resources). Drivers and strategies read it; they never parse YAML themselves.
import { z } from 'zod';
import { loadConfig, type Loaded } from './load.js';

export const BOARDS = {
  esp32: { cpuMhz: 240, ram: 532480, label: 'ESP32 (Xtensa LX6, 520 KiB SRAM)' },
  esp32s3: { cpuMhz: 240, ram: 524288, label: 'ESP32-S3 (Xtensa LX7, 512 KiB SRAM)' },
  rpi4: { cpuMhz: 1500, ram: 4294967296, label: 'Raspberry Pi 4 (Cortex-A72, 4 GiB)' },
  rpi3: { cpuMhz: 1200, ram: 1073741824, label: 'Raspberry Pi 3 (Cortex-A53, 1 GiB)' },
} as const;
export type Board = keyof typeof BOARDS;
const boardNames = Object.keys(BOARDS) as [Board, ...Board[]];

const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/, 'node names are 1-40 letters, digits, "-", "_" or "."');
const baud = z.number().int().min(300).max(4_000_000);

const virtualNode = z.strictObject({
  name: nodeName,
  kind: z.literal('virtual'),
  board: z.enum(boardNames),
  baud: baud.default(115200),
  pace: z.boolean().default(false),
});

const serialNode = z.strictObject({
  name: nodeName,
  kind: z.literal('serial'),
  board: z.enum(boardNames),
  port: z.string().regex(/^\/dev\/[A-Za-z0-9_./:+-]+$/, 'a serial port is a /dev path, e.g. /dev/serial/by-id/usb-...-if00-port0'),
  baud: baud.default(115200),
});

export const nodeSchema = z.discriminatedUnion('kind', [virtualNode, serialNode]);

const influxSchema = z.strictObject({
  url: z.url(),
  org: z.string().default(''),
  bucket: z.string().min(1),
  tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).default('QSLAB_INFLUX_TOKEN'),
});

export const rigSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
  description: z.string().optional(),
  nodes: z.array(nodeSchema).min(1),
  server: z
    .strictObject({
      bind: z.string().default('127.0.0.1'),
      advertise: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(0),
      keys: z.string().optional(),
      // Server-side ML-KEM/ML-DSA: the firmware's C library in worker processes (fast, like a real server)
      // or @noble/post-quantum in the controller (independent of the firmware's code, ~10x slower).
      pqc: z.enum(['firmware-c', 'noble']).default('firmware-c'),
    })
    .default({ bind: '127.0.0.1', advertise: '127.0.0.1', port: 0, pqc: 'firmware-c' }),
  // Interfaces qslab may shape on this host (towards the nodes); the one carrying the default route is refused
  // unless forced.
  net: z.strictObject({ interfaces: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'an interface name: 1-15 of A-Z a-z 0-9 _ . -')).default([]) }).optional(),
  storage: z
    .strictObject({
      sqlite: z.string().default('.qslab/qslab.db'),
      influx: influxSchema.optional(),
    })
    .default({ sqlite: '.qslab/qslab.db' }),
}).superRefine((rig, ctx) => {
  const seen = new Map<string, number>();
  rig.nodes.forEach((n, i) => {
    if (seen.has(n.name)) {
      ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `duplicate node name "${n.name}" (also nodes[${seen.get(n.name)}])` });
    }
    seen.set(n.name, i);
  });
});

export type Rig = z.infer<typeof rigSchema>;
export type RigNode = z.infer<typeof nodeSchema>;

export function loadRig(file: string): Loaded<Rig> {
  return loadConfig(file, rigSchema);
}

export function isVirtualRig(rig: Rig): boolean {
  return rig.nodes.some((n) => n.kind === 'virtual');
}
