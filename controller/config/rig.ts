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

// The battery a node would run from in the field: battery drain per 100 operations is reported against it.
const battery = z.strictObject({
  capacity_mah: z.number().positive().max(1e6),
  nominal_v: z.number().positive().max(60),
  // DC-DC / LDO efficiency from the battery to the node's supply (the meter measures after the regulator)
  regulator_efficiency: z.number().gt(0).max(1).default(0.85),
});

const virtualNode = z.strictObject({
  name: nodeName,
  kind: z.literal('virtual'),
  board: z.enum(boardNames),
  baud: baud.default(115200),
  pace: z.boolean().default(false),
  battery: battery.optional(),
});

// How `qslab flash` puts the POSIX build on a Raspberry Pi node: over ssh (controller/flash/rpi-ssh.ts). Every
// field reaches an ssh command line, hence the strict patterns.
export const rpiSshDeploy = z.strictObject({
  method: z.literal('rpi-ssh'),
  host: z.string().regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[?[0-9A-Fa-f:.]{2,45}\]?)$/, 'a host name or IP address, e.g. pi4-a.lab.local or 192.168.1.40'),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a Linux user name, e.g. pi'),
  ssh_port: z.number().int().min(1).max(65535).default(22),
  // private key and known_hosts file on the controller (absent: ssh's defaults; host keys are always checked)
  identity: z.string().regex(/^[A-Za-z0-9_./~+-]+$/, 'a file path of A-Z a-z 0-9 _ . / ~ + -').optional(),
  known_hosts: z.string().regex(/^[A-Za-z0-9_./~+-]+$/, 'a file path of A-Z a-z 0-9 _ . / ~ + -').optional(),
  // the Pi-side serial line the node service opens (USB gadget serial, or the UART with its login console off)
  device: z.string().regex(/^\/dev\/[A-Za-z0-9_./:+-]+$/, 'a device on the Pi, e.g. /dev/ttyGS0 or /dev/serial0').refine((d) => !d.includes('..'), 'no ".." in a device path'),
  dir: z.string().regex(/^\/[A-Za-z0-9_./-]+$/, 'an absolute path of A-Z a-z 0-9 _ . / -').refine((d) => !d.includes('..') && d !== '/', 'no ".." and not "/"').default('/opt/qslab'),
  service: z.enum(['systemd', 'supervise']).default('systemd'),
});
export type RpiSshDeploy = z.infer<typeof rpiSshDeploy>;

// Wi-Fi station credentials a node gets at provisioning (`qslab provision`, the protocol's `net` command). The rules
// are the firmware's (firmware/PROTOCOL.md §4 "net"); the controller checks them before anything is sent.
export const WIFI_PASS_ENV_DEFAULT = 'QSLAB_WIFI_PASS';

/** Why `ssid` is not a valid SSID (1-32 bytes of UTF-8, no NUL), or undefined. */
export function wifiSsidProblem(ssid: string): string | undefined {
  const n = Buffer.byteLength(ssid, 'utf8');
  if (n < 1 || n > 32) return `an SSID has 1-32 bytes (this one has ${n})`;
  if (ssid.includes('\0')) return 'an SSID cannot contain a NUL character';
  return undefined;
}

/**
 * Why `pass` is not a valid Wi-Fi password, or undefined: "" (open network), 8-63 printable ASCII characters (a WPA
 * passphrase) or exactly 64 hex digits (a raw PSK). The text names the rule, never the value or its length.
 */
export function wifiPassProblem(pass: string): string | undefined {
  if (pass === '') return undefined;
  if (pass.length === 64) return /^[0-9A-Fa-f]{64}$/.test(pass) ? undefined : 'a 64-character password must be 64 hex digits (a raw PSK); a passphrase has 8-63 characters';
  if (!/^[\x20-\x7e]*$/.test(pass)) return 'a passphrase has only printable ASCII characters (space to ~)';
  if (pass.length < 8 || pass.length > 63) return 'a passphrase has 8-63 characters (or give 64 hex digits, or nothing for an open network)';
  return undefined;
}

const WIFI_PASSWORD_KEYS = ['password', 'pass', 'passphrase', 'psk', 'key'] as const;
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name (A-Z, 0-9, _), e.g. QSLAB_WIFI_PASS');

const wifiSchema = z
  .strictObject({
    ssid: z.string().superRefine((v, ctx) => {
      const p = wifiSsidProblem(v);
      if (p) ctx.addIssue({ code: 'custom', message: p, params: { fix: 'give the network name as the access point broadcasts it' } });
    }),
    // The password is never in the rig file (rig files are stored with every run and shared): only the name of
    // the environment variable that holds it when `qslab provision` runs.
    password_env: envName.optional(),
    // An open network (no password): explicit, so that an unset or empty variable never means "no password".
    open: z.boolean().default(false),
    // Accepted by the parser only to be refused with the reason (below); never part of the parsed value.
    ...Object.fromEntries(WIFI_PASSWORD_KEYS.map((k) => [k, z.unknown().optional()])) as Record<(typeof WIFI_PASSWORD_KEYS)[number], z.ZodOptional<z.ZodUnknown>>,
  })
  .superRefine((w, ctx) => {
    for (const k of WIFI_PASSWORD_KEYS) {
      if (w[k] !== undefined) {
        ctx.addIssue({
          code: 'custom', path: [k],
          message: `a Wi-Fi password is never written in the rig file (rig files are stored with every run and shared), so "${k}:" is refused`,
          params: { fix: `remove ${k}: and put password_env: ${WIFI_PASS_ENV_DEFAULT} (the name of an environment variable), then export ${WIFI_PASS_ENV_DEFAULT}=... in the shell that runs qslab provision` },
        });
      }
    }
    if (w.open && w.password_env !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['open'], message: 'an open network has no password, but password_env is given too', params: { fix: 'remove open: true, or remove password_env:' } });
    }
  })
  .transform((w) => ({ ssid: w.ssid, open: w.open, password_env: w.open ? undefined : (w.password_env ?? WIFI_PASS_ENV_DEFAULT) }));
export type RigWifi = z.infer<typeof wifiSchema>;

const serialNode = z.strictObject({
  name: nodeName,
  kind: z.literal('serial'),
  board: z.enum(boardNames),
  port: z.string().regex(/^\/dev\/[A-Za-z0-9_./:+-]+$/, 'a serial port is a /dev path, e.g. /dev/serial/by-id/usb-...-if00-port0'),
  baud: baud.default(115200),
  battery: battery.optional(),
  deploy: rpiSshDeploy.optional(),
  // Wi-Fi station of the node's data plane (ESP32 boards), sent by `qslab provision`. A Raspberry Pi uses the OS's
  // network: its node answers "not applicable (host network)".
  wifi: wifiSchema.optional(),
});

export const nodeSchema = z.discriminatedUnion('kind', [virtualNode, serialNode]);

const partName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/, 'names are 1-40 letters, digits, "-", "_" or "."');
const devPath = z.string().regex(/^\/dev\/[A-Za-z0-9_./:+-]+$/, 'a device is a /dev path, e.g. /dev/serial/by-id/usb-...-if00 or /dev/rfcomm0');

// Power meters (DESIGN §3: resources). `emulated: true` = the virtual rig: an emulator speaking the meter's real
// wire protocol on a pty (or, for INA2xx, on the emulated Firmata board) instead of a device at `port`.
const meterSchema = z.strictObject({
  name: partName,
  kind: z.enum(['um34c', 'um25c', 'ppk2', 'ina219', 'ina226']),
  node: nodeName,
  port: devPath.optional(),
  emulated: z.boolean().default(false),
  // ina219 / ina226: the Firmata board the sensor hangs on (I2C), its address, shunt and range
  board: partName.optional(),
  address: z.number().int().min(0x40).max(0x4f).optional(),
  shunt_ohms: z.number().positive().max(100).default(0.1),
  max_current_a: z.number().positive().max(100).default(2),
  // ppk2: digital input D0-D7 wired to the node's marker line; source-meter voltage (absent = ampere meter)
  marker_channel: z.number().int().min(0).max(7).optional(),
  source_mv: z.number().int().min(800).max(5000).optional(),
});

// Firmata boards (an Arduino running StandardFirmata) carrying relays, marker inputs and I2C sensors.
const firmataSchema = z.strictObject({
  name: partName,
  kind: z.literal('firmata'),
  port: devPath.optional(),
  emulated: z.boolean().default(false),
  baud: baud.default(57600),
});

// A relay in a node's supply: the runner power-cycles a node that stops answering.
const relaySchema = z.strictObject({
  name: partName,
  board: partName,
  pin: z.number().int().min(2).max(69),
  node: nodeName,
  // NO: the node has power while the relay is energized; NC: while it is released
  contact: z.enum(['NO', 'NC']).default('NO'),
  // most relay modules energize when the pin is LOW
  active_low: z.boolean().default(true),
  off_ms: z.number().int().min(50).max(60000).default(1000),
});

// A node's marker line wired to a Firmata input (a PPK2 samples it on its own digital inputs: marker_channel).
const markerSchema = z.strictObject({ node: nodeName, board: partName, pin: z.number().int().min(2).max(69) });

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
  meters: z.array(meterSchema).default([]),
  boards: z.array(firmataSchema).default([]),
  relays: z.array(relaySchema).default([]),
  markers: z.array(markerSchema).default([]),
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
      ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `duplicate node name "${n.name}" (also nodes[${seen.get(n.name)}])`, params: { fix: 'give every node a unique name' } });
    }
    seen.set(n.name, i);
  });
  const nodes = new Map(rig.nodes.map((n) => [n.name, n]));
  const boards = new Set(rig.boards.map((b) => b.name));
  const issue = (path: (string | number)[], message: string, fix: string) => ctx.addIssue({ code: 'custom', path, message, params: { fix } });
  rig.nodes.forEach((n, i) => {
    if (n.kind === 'serial' && n.deploy && !n.board.startsWith('rpi')) {
      issue(['nodes', i, 'deploy'], `rpi-ssh deploys the POSIX build to a Raspberry Pi; "${n.name}" is a ${n.board}`, 'remove deploy: (ESP32 nodes are flashed over their serial port)');
    }
  });
  const knownNode = (path: (string | number)[], name: string) => {
    if (!nodes.has(name)) issue(path, `no node "${name}" in nodes`, `use one of: ${[...nodes.keys()].join(', ')}`);
  };
  const knownBoard = (path: (string | number)[], name: string | undefined) => {
    if (name === undefined) issue(path, 'an INA2xx sensor needs `board:` (the Firmata board it is wired to)', 'add board: <name of an entry under boards:>');
    else if (!boards.has(name)) issue(path, `no board "${name}" under boards:`, boards.size ? `use one of: ${[...boards].join(', ')}` : 'add the Firmata board under boards: (name, kind: firmata, port)');
  };
  const metered = new Map<string, number>();
  rig.meters.forEach((m, i) => {
    knownNode(['meters', i, 'node'], m.node);
    if (metered.has(m.node)) issue(['meters', i, 'node'], `node "${m.node}" already has a meter (meters[${metered.get(m.node)}])`, 'keep one meter per node: remove one of them or point it at another node');
    metered.set(m.node, i);
    const ina = m.kind === 'ina219' || m.kind === 'ina226';
    if (ina) {
      knownBoard(['meters', i, 'board'], m.board);
      if (m.port) issue(['meters', i, 'port'], 'an INA2xx is read over its Firmata board, not a port of its own', 'remove port:');
    } else if (!m.emulated && !m.port) issue(['meters', i, 'port'], `a ${m.kind} needs a port`, 'add port: /dev/serial/by-id/... (or /dev/rfcommN), or emulated: true on the virtual rig');
    if (m.emulated && nodes.get(m.node)?.kind !== 'virtual') issue(['meters', i, 'emulated'], `an emulated meter can only measure a virtual node ("${m.node}" is ${nodes.get(m.node)?.kind ?? 'unknown'})`, 'remove emulated: true and give the real meter\'s port:');
    if (m.marker_channel !== undefined && m.kind !== 'ppk2') issue(['meters', i, 'marker_channel'], 'only a PPK2 has digital inputs', 'remove marker_channel: and wire the marker to a Firmata pin under markers:');
  });
  rig.boards.forEach((b, i) => {
    if (!b.emulated && !b.port) issue(['boards', i, 'port'], 'a Firmata board needs a port', 'add port: /dev/serial/by-id/usb-Arduino..., or emulated: true on the virtual rig');
  });
  const pins = new Map<string, string>();
  const usePin = (path: (string | number)[], board: string, pin: number) => {
    const k = `${board}:${pin}`;
    if (pins.has(k)) issue(path, `pin ${pin} of board "${board}" is already used by ${pins.get(k)}`, 'give each relay and marker its own pin');
    pins.set(k, path.join('.'));
  };
  rig.relays.forEach((r, i) => {
    knownNode(['relays', i, 'node'], r.node);
    knownBoard(['relays', i, 'board'], r.board);
    usePin(['relays', i, 'pin'], r.board, r.pin);
  });
  rig.markers.forEach((m, i) => {
    knownNode(['markers', i, 'node'], m.node);
    knownBoard(['markers', i, 'board'], m.board);
    usePin(['markers', i, 'pin'], m.board, m.pin);
  });
});

export type Rig = z.infer<typeof rigSchema>;
export type RigNode = z.infer<typeof nodeSchema>;
export type RigMeter = z.infer<typeof meterSchema>;
export type RigBoard = z.infer<typeof firmataSchema>;
export type RigRelay = z.infer<typeof relaySchema>;
export type Battery = z.infer<typeof battery>;

export function loadRig(file: string): Loaded<Rig> {
  return loadConfig(file, rigSchema);
}

export function isVirtualRig(rig: Rig): boolean {
  return rig.nodes.some((n) => n.kind === 'virtual');
}
