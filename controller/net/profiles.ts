// Network link profiles (fixtures/network-profiles.yaml): what the data plane between a node and the handshake
// server looks like. Units follow netem (percentages, ms, kbit/s) so the kernel shaper maps them 1:1 and the
// userspace relay (relay.ts) reproduces the same semantics. Every value in the file carries a `source:`.
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig, parseConfig, type Loaded } from '../config/load.js';
import { ROOT } from '../paths.js';

export const DEFAULT_PROFILES = join(ROOT, 'fixtures', 'network-profiles.yaml');

const source = z.string().min(3, 'cite where the value comes from');
const pct = z.number().min(0).max(100);
const sourced = <T extends z.ZodType>(value: T) => z.strictObject({ value, source });

export const JITTER_DISTRIBUTIONS = ['normal', 'uniform', 'pareto'] as const;
export type JitterDistribution = (typeof JITTER_DISTRIBUTIONS)[number];

const lossSchema = z.discriminatedUnion('model', [
  z.strictObject({ model: z.literal('none'), source: source.optional() }),
  z.strictObject({ model: z.literal('random'), p: pct, source }),
  // netem `loss gemodel p r 1-h 1-k`; netem defaults: r = 100 - p, 1-h = 100, 1-k = 0.
  z.strictObject({
    model: z.literal('gilbert-elliott'),
    p: pct,
    r: pct.optional(),
    one_minus_h: pct.default(100),
    one_minus_k: pct.default(0),
    source,
  }),
  // netem `loss state p13 p31 p32 p23 p14` (Salsano et al. 4-state GI model); defaults as iproute2.
  z.strictObject({
    model: z.literal('markov4'),
    p13: pct,
    p31: pct.optional(),
    p32: pct.default(0),
    p23: pct.default(100),
    p14: pct.default(0),
    source,
  }),
]);

const profileBody = z.strictObject({
  extends: z.string().optional(),
  description: z.string().optional(),
  paper_network_type: sourced(z.string().min(1)).optional(),
  delay_ms: sourced(z.number().min(0).max(60_000)).optional(),
  jitter_ms: z
    .strictObject({ value: z.number().min(0).max(60_000), distribution: z.enum(JITTER_DISTRIBUTIONS), source })
    .optional(),
  loss: lossSchema.optional(),
  rate_kbit: sourced(z.number().min(0).max(100_000_000)).optional(),
  corrupt_pct: sourced(pct).optional(),
  duplicate_pct: sourced(pct).optional(),
  reorder_pct: sourced(pct).optional(),
  overhead_bytes: sourced(z.number().int().min(0).max(1500)).optional(),
});
type ProfileBody = z.infer<typeof profileBody>;

const profileName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,39}$/, 'profile names are 1-40 lower-case letters, digits, "-", "_" or "."');

export const profilesFileSchema = z
  .strictObject({ profiles: z.record(profileName, profileBody.nullable().transform((b) => b ?? {})) })
  .superRefine((file, ctx) => {
    for (const [name, body] of Object.entries(file.profiles)) {
      if (body.extends === undefined) continue;
      const seen = new Set([name]);
      let cur: string | undefined = body.extends;
      while (cur !== undefined) {
        const base: ProfileBody | undefined = file.profiles[cur];
        if (!base) {
          ctx.addIssue({
            code: 'custom',
            path: ['profiles', name, 'extends'],
            message: `unknown profile "${cur}"; known: ${Object.keys(file.profiles).join(', ')}`,
          });
          break;
        }
        if (seen.has(cur)) {
          ctx.addIssue({ code: 'custom', path: ['profiles', name, 'extends'], message: `"extends" cycle through "${cur}"` });
          break;
        }
        seen.add(cur);
        cur = base.extends;
      }
    }
  });
export type ProfilesFile = z.infer<typeof profilesFileSchema>;

export type LossModel =
  | { model: 'none' }
  | { model: 'random'; p: number }
  | { model: 'gilbert-elliott'; p: number; r: number; one_minus_h: number; one_minus_k: number }
  | { model: 'markov4'; p13: number; p31: number; p32: number; p23: number; p14: number };

/** A resolved link profile. Percentages are 0-100 (netem units); applies per direction. */
export interface LinkProfile {
  name: string;
  description: string;
  paperNetworkType?: string;
  delay_ms: number;
  /** normal / pareto: standard deviation; uniform: +/- half range (netem semantics). */
  jitter_ms: number;
  jitter_distribution: JitterDistribution;
  loss: LossModel;
  /** 0 = unlimited. */
  rate_kbit: number;
  corrupt_pct: number;
  duplicate_pct: number;
  reorder_pct: number;
  overhead_bytes: number;
  /** Where each value comes from, by key (delay_ms, jitter_ms, loss, ...). */
  sources: Record<string, string>;
}

/** A profile from plain numbers (tests, jamming phases built in code). */
export function makeProfile(p: Partial<LinkProfile> & { name: string }): LinkProfile {
  return {
    description: '',
    delay_ms: 0,
    jitter_ms: 0,
    jitter_distribution: 'normal',
    loss: { model: 'none' },
    rate_kbit: 0,
    corrupt_pct: 0,
    duplicate_pct: 0,
    reorder_pct: 0,
    overhead_bytes: 0,
    sources: {},
    ...p,
  };
}

function resolveLoss(l: NonNullable<ProfileBody['loss']>): LossModel {
  switch (l.model) {
    case 'none':
      return { model: 'none' };
    case 'random':
      return { model: 'random', p: l.p };
    case 'gilbert-elliott':
      return { model: 'gilbert-elliott', p: l.p, r: l.r ?? 100 - l.p, one_minus_h: l.one_minus_h, one_minus_k: l.one_minus_k };
    case 'markov4':
      return { model: 'markov4', p13: l.p13, p31: l.p31 ?? 100 - l.p13, p32: l.p32, p23: l.p23, p14: l.p14 };
  }
}

function resolve(file: ProfilesFile, name: string): LinkProfile {
  const chain: ProfileBody[] = [];
  for (let cur: string | undefined = name; cur !== undefined; cur = file.profiles[cur]!.extends) chain.unshift(file.profiles[cur]!);
  const b: ProfileBody = Object.assign({}, ...chain);
  const sources: Record<string, string> = {};
  for (const [k, v] of Object.entries(b)) {
    if (v && typeof v === 'object' && 'source' in v && typeof v.source === 'string') sources[k] = v.source;
  }
  return makeProfile({
    name,
    description: b.description ?? '',
    ...(b.paper_network_type ? { paperNetworkType: b.paper_network_type.value } : {}),
    delay_ms: b.delay_ms?.value ?? 0,
    jitter_ms: b.jitter_ms?.value ?? 0,
    jitter_distribution: b.jitter_ms?.distribution ?? 'normal',
    loss: b.loss ? resolveLoss(b.loss) : { model: 'none' },
    rate_kbit: b.rate_kbit?.value ?? 0,
    corrupt_pct: b.corrupt_pct?.value ?? 0,
    duplicate_pct: b.duplicate_pct?.value ?? 0,
    reorder_pct: b.reorder_pct?.value ?? 0,
    overhead_bytes: b.overhead_bytes?.value ?? 0,
    sources,
  });
}

export function resolveProfiles(file: ProfilesFile): Map<string, LinkProfile> {
  return new Map(Object.keys(file.profiles).map((n) => [n, resolve(file, n)]));
}

/** Parses profile YAML text (errors name file:line:col, the path and the fix). */
export function parseProfiles(file: string, text: string): Map<string, LinkProfile> {
  return resolveProfiles(parseConfig(file, text, profilesFileSchema).value);
}

/** Loads fixtures/network-profiles.yaml (or `file`). Throws ConfigError with located messages. */
export function loadProfiles(file: string = DEFAULT_PROFILES): Map<string, LinkProfile> {
  const loaded: Loaded<ProfilesFile> = loadConfig(file, profilesFileSchema);
  return resolveProfiles(loaded.value);
}
