// Campaign file: what to measure. Expanded into cells (suite × node × payload × repetition).
import { z } from 'zod';
import { loadConfig, type Loaded } from './load.js';

export const SUITES = [
  'rsa2048', 'ecdhe-p256-ecdsa', 'x25519', 'mlkem512-mldsa44', 'mlkem768-mldsa65', 'mlkem1024-mldsa87', 'x25519mlkem768',
  'qkd-mlkem768', 'qkd-x25519mlkem768',
  'none', // the plaintext baseline (no key exchange, records unencrypted): for comparison only
] as const;
export const AEADS = ['aes-256-gcm', 'chacha20-poly1305'] as const;

/** Default sifted key-class bits per simulated link of a qkd.sweep (bb84+e91 × 6 distances × 3 repeats: ~2 s). */
export const QKD_SWEEP_BLOCK_BITS = 100_000;

const unique = (a: readonly unknown[]): boolean => new Set(a).size === a.length;

export const campaignSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
  description: z.string().optional(),
  rig: z.string().default('rigs/virtual.yaml'),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
  suites: z.array(z.enum(SUITES)).min(1),
  nodes: z.union([z.literal('all'), z.array(z.string()).min(1)]).default('all'),
  handshakes: z.number().int().min(1).max(100000),
  repetitions: z.number().int().min(1).max(1000).default(1),
  // Network profiles (names from profiles_file); 'loopback' = no impairment. Each profile is its own cell.
  profiles: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.+-]{0,63}$/, 'profile names are lower-case letters, digits, "_", ".", "+", "-"')).min(1).default(['loopback']),
  profiles_file: z.string().default('fixtures/network-profiles.yaml'),
  // Jamming schedules: a named sequence of profile phases that a cell's link cycles through (usable in `profiles`).
  schedules: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9_.+-]{0,63}$/),
      z.strictObject({
        phases: z.array(z.strictObject({ profile: z.string(), seconds: z.number().positive().max(86400) })).min(1),
        repeat: z.boolean().default(true),
      }),
    )
    .default({}),
  // Energy (nodes with a meter in the rig): every burst is measured; for slow meters (< 1 kHz, e.g. a UM34C at
  // 10 Hz) a cell whose energy per op is less certain than target_rel_err gets one extra burst sized to reach it.
  power: z
    .strictObject({
      target_rel_err: z.number().gt(0).max(1).default(0.05),
      max_ops: z.number().int().min(1).max(100000).default(3000),
      baseline_s: z.number().min(0.05).max(600).optional(),
    })
    .default({ target_rel_err: 0.05, max_ops: 3000 }),
  // Firmware the campaign needs (build hash as `hello` reports it, 16 hex digits): one for all nodes or one per
  // node. A node on another build is not used (its cells fail with the fix: `qslab flash`).
  require_build: z
    .union([
      z.string().regex(/^[0-9a-f]{16}$/, 'a build hash is 16 lower-case hex digits, as `qslab rig check` prints it'),
      z.record(z.string(), z.string().regex(/^[0-9a-f]{16}$/, 'a build hash is 16 lower-case hex digits, as `qslab rig check` prints it')),
    ])
    .optional(),
  // Who shapes virtual nodes' links: auto = the kernel when running as root (a namespace + veth per node, tc/nft,
  // the relay covering the rest), else the userspace relay; relay / kernel force one.
  shaper: z.enum(['auto', 'relay', 'kernel']).default('auto'),
  // Post-quantum suites only: the node also authenticates with its own ML-DSA key (ClientAuth).
  mutual: z.boolean().default(false),
  records: z
    .strictObject({
      count: z.number().int().min(0).max(100000).default(10),
      bytes: z.union([z.number().int().min(1).max(16384), z.array(z.number().int().min(1).max(16384)).min(1)]).default(256),
      aead: z.enum(AEADS).default('aes-256-gcm'),
      refresh: z.number().int().min(0).max(1_000_000).default(0),
    })
    .default({ count: 10, bytes: 256, aead: 'aes-256-gcm', refresh: 0 }),
  timeouts: z
    .strictObject({
      idle_s: z.number().min(1).max(3600).default(15),
      cell_s: z.number().min(1).max(86400).default(600),
    })
    .default({ idle_s: 15, cell_s: 600 }),
  retries: z.number().int().min(0).max(10).default(1),
  // QKD suites: the emulated link feeding the key managers, and what to do when their pools run dry.
  qkd: z
    .strictObject({
      link: z.strictObject({ protocol: z.enum(['bb84', 'e91']).default('bb84'), distance_km: z.number().min(0).max(500).default(10) }).optional(),
      rate_bps: z.number().positive().optional(),   // overrides the simulated link's secret key rate
      key_bits: z.number().int().min(256).max(8192).multipleOf(8).default(256),
      policy: z.enum(['wait', 'fallback', 'abort']).default('wait'),
      // A QKD link sweep for the report's key rate / QBER against distance: simulateLink (controller/qkd) once per
      // protocol × distance × repeat, seeds campaign seed + repeat index, run once per run before the cells.
      sweep: z
        .strictObject({
          protocols: z.array(z.enum(['bb84', 'e91'])).min(1).default(['bb84']).refine(unique, { message: 'a protocol is listed twice', params: { fix: 'list each protocol once' } }),
          distances_km: z.array(z.number().min(0).max(300)).min(1).max(30).refine(unique, { message: 'a distance is listed twice', params: { fix: 'list each distance once' } }),
          repeats: z.number().int().min(1).max(20).default(3),
          block_bits: z.number().int().min(10_000).max(10_000_000).default(QKD_SWEEP_BLOCK_BITS),
        })
        .optional(),
    })
    .default({ key_bits: 256, policy: 'wait' }),
  // Claims the run must meet (checked after the run; a failed check makes the run fail with the reason).
  checks: z
    .strictObject({
      min_record_exchanges: z.number().int().min(0).optional(),
      no_key_reuse: z.boolean().optional(),
      max_failed_ops: z.number().int().min(0).optional(),
    })
    .optional(),
});

export type Campaign = z.infer<typeof campaignSchema>;

export function loadCampaign(file: string): Loaded<Campaign> {
  return loadConfig(file, campaignSchema);
}
