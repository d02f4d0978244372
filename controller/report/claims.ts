// The seed paper's claims as data (fixtures/paper-claims.yaml) and the judgement of a measured value against one.
// A claim is "reproduced" only by a measurement; ✓/X marks and claims qslab cannot measure stay "not measured" with
// the reason written down in the claims file.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { loadConfig, parseConfig } from '../config/load.js';
import { SUITES } from '../config/campaign.js';
import { BOARDS, type Board } from '../config/rig.js';
import { ROOT } from '../paths.js';

export const DEFAULT_CLAIMS = 'fixtures/paper-claims.yaml';

export const METRICS = [
  'ram_pct', 'cpu_pct', 'enc_latency_ms', 'battery_pct_per_100', 'throughput_kbps', 'packet_loss_pct', 'rtt_ms',
  'keygen_ms', 'success_pct', 'record_exchanges', 'key_reuse', 'decrypt_failures',
] as const;
export type Metric = (typeof METRICS)[number];

export const UNITS = ['ms', '%', 'kbps', '%/100 ops', 'count'] as const;
export type Unit = (typeof UNITS)[number];

/** The unit each metric is reported in; a claim's unit must match its metric's. */
export const METRIC_UNITS: Readonly<Record<Metric, Unit>> = {
  ram_pct: '%', cpu_pct: '%', enc_latency_ms: 'ms', battery_pct_per_100: '%/100 ops', throughput_kbps: 'kbps',
  packet_loss_pct: '%', rtt_ms: 'ms', keygen_ms: 'ms', success_pct: '%', record_exchanges: 'count', key_reuse: 'count',
  decrypt_failures: 'count',
};

export const CLAIM_KINDS = ['value', 'upper_bound', 'lower_bound', 'mark', 'count'] as const;
export type ClaimKind = (typeof CLAIM_KINDS)[number];

/** qslab suite names plus "none" (no encryption). */
export const CLAIM_SUITES = [...SUITES, 'none'] as const;
export type ClaimSuite = (typeof CLAIM_SUITES)[number];

export const MARKS = ['✓', 'X'] as const;
export type Mark = (typeof MARKS)[number];

const boardNames = Object.keys(BOARDS) as [Board, ...Board[]];
const issue = (ctx: z.RefinementCtx, path: (string | number)[], message: string, fix: string): void =>
  ctx.addIssue({ code: 'custom', path, message, params: { fix } });

export interface TableRef { table: 1 | 2 | 3 | 4; row: string; column: string }
export interface TextRef { section: string; quote: string }
export type ClaimRef = TableRef | TextRef;

const refSchema = z
  .strictObject({
    table: z.number().int().min(1).max(4).optional(),
    row: z.string().min(1).optional(),
    column: z.string().min(1).optional(),
    section: z.string().min(1).optional(),
    quote: z.string().min(1).optional(),
  })
  .superRefine((r, ctx) => {
    const tableKeys = (['table', 'row', 'column'] as const).filter((k) => r[k] !== undefined);
    const textKeys = (['section', 'quote'] as const).filter((k) => r[k] !== undefined);
    const fix = 'give either {table, row, column} exactly as the paper prints them, or {section, quote} with a verbatim quote';
    if (tableKeys.length && textKeys.length) issue(ctx, [], `mixes a table reference (${tableKeys.join(', ')}) with a text reference (${textKeys.join(', ')})`, fix);
    else if (tableKeys.length && tableKeys.length < 3) issue(ctx, [], `a table reference needs table, row and column (has ${tableKeys.join(', ')})`, fix);
    else if (textKeys.length && textKeys.length < 2) issue(ctx, [], `a text reference needs section and quote (has ${textKeys.join(', ')})`, fix);
    else if (!tableKeys.length && !textKeys.length) issue(ctx, [], 'empty reference', fix);
  })
  .transform((r): ClaimRef =>
    r.table !== undefined ? { table: r.table as TableRef['table'], row: r.row!, column: r.column! } : { section: r.section!, quote: r.quote! });

export const measureSchema = z.strictObject({
  metric: z.enum(METRICS),
  suites: z.array(z.enum(CLAIM_SUITES)).min(1),
  board: z.enum(boardNames),
  /** A profile name from fixtures/network-profiles.yaml (required for Table 4 claims). */
  profile: z.string().regex(/^[a-z0-9][a-z0-9_.+-]{0,63}$/, 'profile names are lower-case letters, digits, "_", ".", "+", "-"').optional(),
  note: z.string().min(1).optional(),
});
export type ClaimMeasure = z.infer<typeof measureSchema>;

const common = {
  id: z.string().regex(/^(t[1-4]|h)\.[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/, 'claim ids look like t1.esp32-rsa.ram_pct (t1-t4 for tables, h for headline text claims)'),
  ref: refSchema,
  note: z.string().min(1).optional(),
};
const numeric = {
  ...common,
  value: z.number().finite(),
  unit: z.enum(UNITS),
  measure: measureSchema.nullable(),
  not_measured_reason: z.string().min(1).optional(),
};

const valueClaim = z.strictObject({
  ...numeric,
  kind: z.literal('value'),
  tolerance: z.strictObject({ rel: z.number().gt(0).max(10).optional(), abs: z.number().gt(0).optional() }),
});
const boundClaim = <K extends 'upper_bound' | 'lower_bound'>(kind: K) =>
  z.strictObject({ ...numeric, kind: z.literal(kind), tolerance: z.strictObject({ bound: z.number().finite() }) });
const countClaim = z.strictObject({
  ...numeric,
  kind: z.literal('count'),
  value: z.number().int().min(0),
  tolerance: z.strictObject({ at_least: z.number().int().min(0).optional(), at_most: z.number().int().min(0).optional() }),
});
const markClaim = z.strictObject({
  ...common,
  kind: z.literal('mark'),
  value: z.enum(MARKS),
  measure: z.null(),
  not_measured_reason: z.string().min(1),
});

const claimUnion = z.discriminatedUnion('kind', [valueClaim, boundClaim('upper_bound'), boundClaim('lower_bound'), countClaim, markClaim]);
type ClaimOut = z.output<typeof claimUnion>;

// Check `kind` first so a wrong kind gets "use one of: ..." as its fix instead of a bare union error.
const claimSchema = z
  .looseObject({ kind: z.enum(CLAIM_KINDS) })
  .pipe(claimUnion as unknown as z.ZodType<ClaimOut, { kind: ClaimKind }>);

export type Claim = ClaimOut;
export type ValueClaim = Extract<Claim, { kind: 'value' }>;
export type BoundClaim = Extract<Claim, { kind: 'upper_bound' | 'lower_bound' }>;
export type CountClaim = Extract<Claim, { kind: 'count' }>;
export type MarkClaim = Extract<Claim, { kind: 'mark' }>;
export type MeasurableClaim = Exclude<Claim, MarkClaim>;

export const claimsFileSchema = z
  .strictObject({ claims: z.array(claimSchema).min(1) })
  .superRefine((f, ctx) => {
    const seen = new Map<string, number>();
    f.claims.forEach((c, i) => {
      const at = (...p: (string | number)[]) => ['claims', i, ...p];
      const prev = seen.get(c.id);
      if (prev !== undefined) issue(ctx, at('id'), `duplicate claim id "${c.id}" (also claims[${prev}])`, 'give every claim a unique id');
      seen.set(c.id, i);
      const prefix = c.id.split('.')[0]!;
      if ('table' in c.ref && prefix !== `t${c.ref.table}`) issue(ctx, at('id'), `id "${c.id}" refers to table ${c.ref.table}`, `start the id with t${c.ref.table}.`);
      if ('quote' in c.ref && prefix !== 'h') issue(ctx, at('id'), `id "${c.id}" is a text claim`, 'start the id with h.');
      if (c.kind === 'mark') return;
      if (c.measure === null && !c.not_measured_reason) issue(ctx, at('not_measured_reason'), 'a claim with measure: null needs a not_measured_reason', 'say why qslab cannot measure it and what would be needed');
      if (c.measure !== null && c.not_measured_reason) issue(ctx, at('not_measured_reason'), 'a measured claim has a not_measured_reason', 'remove not_measured_reason, or set measure: null');
      if (c.measure) {
        const want = METRIC_UNITS[c.measure.metric];
        if (c.unit !== want) issue(ctx, at('unit'), `unit "${c.unit}" does not match metric ${c.measure.metric} (reported in "${want}")`, `use unit: "${want}" or another metric`);
        if ('table' in c.ref && c.ref.table === 4 && !c.measure.profile) issue(ctx, at('measure'), 'a Table 4 claim needs the network profile of its "Network Type" column', 'add profile: (paper-iot-wifi, paper-lte, paper-5g or paper-5g-quantum-sim)');
      }
      const t = c.tolerance as { rel?: number; abs?: number; bound?: number; at_least?: number; at_most?: number };
      if (c.kind === 'value' && t.rel === undefined && t.abs === undefined) issue(ctx, at('tolerance'), 'a value claim needs a tolerance', 'give rel: (0.25 = ±25 %) and/or abs: (in the claim\'s unit)');
      if ((c.kind === 'upper_bound' || c.kind === 'lower_bound') && t.bound !== c.value) issue(ctx, at('tolerance', 'bound'), `bound ${String(t.bound)} differs from the claim's value ${c.value}`, `set bound: ${c.value}`);
      if (c.kind === 'count') {
        const n = (t.at_least !== undefined ? 1 : 0) + (t.at_most !== undefined ? 1 : 0);
        if (n !== 1) issue(ctx, at('tolerance'), 'a count claim needs exactly one of at_least, at_most', `give at_least: ${c.value} ("N+") or at_most: ${c.value} ("none" = at_most: 0)`);
        else if ((t.at_least ?? t.at_most) !== c.value) issue(ctx, at('tolerance'), `the tolerance (${String(t.at_least ?? t.at_most)}) differs from the claim's value ${c.value}`, `use ${c.value}`);
      }
    });
  });
export type ClaimsFile = z.infer<typeof claimsFileSchema>;

/** Parses claims YAML text; errors (ConfigError) name file:line:col, the path in the document and the fix. */
export function parseClaims(file: string, text: string): Claim[] {
  return parseConfig(file, text, claimsFileSchema).value.claims;
}

/** Loads the claims file (a relative path not found from the working directory is taken from the package root). */
export function loadClaims(file: string = DEFAULT_CLAIMS): Claim[] {
  const path = isAbsolute(file) || existsSync(file) ? file : join(ROOT, file);
  return loadConfig(path, claimsFileSchema).value.claims;
}

// ---------------------------------------------------------------------------------------------------------------------
// Judging

/**
 * A measurement summary for one claim (one metric, suite, board, profile). Value and bound claims are judged on the
 * median and p5/p95 of the samples; count claims on the total over the samples, mean × n (the samples are per-cell
 * counts, or 0/1 per operation), so they need `mean`. ciLow/ciHigh are reported, not used for the verdict.
 */
export interface Measured {
  n: number;
  median: number;
  p5: number;
  p95: number;
  mean?: number;
  ciLow?: number;
  ciHigh?: number;
}

export type ClaimStatus = 'reproduced' | 'not reproduced' | 'not measured';
export interface Judgement {
  status: ClaimStatus;
  reason: string;
}

/** A number for a lab reader: integers as they are, at most 4 significant digits otherwise. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) || Math.abs(x) >= 1000) return String(Math.round(x));
  return String(Number(x.toPrecision(4)));
}

function withUnit(x: number, unit: Unit): string {
  return unit === 'count' ? fmtNum(x) : `${fmtNum(x)} ${unit}`;
}

/** "62 %" — a relative difference in percent, to a sensible precision. */
function pctOf(diff: number, of: number): string {
  const p = (Math.abs(diff) / Math.abs(of)) * 100;
  return `${p >= 10 ? String(Math.round(p)) : String(Number(p.toFixed(1)))} %`;
}

function absDesc(x: number, unit: Unit): string {
  return unit === '%' ? `${fmtNum(x)} percentage points` : withUnit(x, unit);
}

function spread(m: Measured, unit: Unit): string {
  const ci = m.ciLow !== undefined && m.ciHigh !== undefined ? `, CI ${fmtNum(m.ciLow)}–${fmtNum(m.ciHigh)}` : '';
  return `(p5–p95 ${fmtNum(m.p5)}–${fmtNum(m.p95)}${unit === 'count' ? '' : ` ${unit}`}${ci}, n=${m.n})`;
}

function where(c: MeasurableClaim): string {
  const m = c.measure;
  if (!m) return '';
  return `${m.metric} for ${m.suites.join(', ')} on ${m.board}${m.profile ? ` over ${m.profile}` : ''}`;
}

const COUNT_LABELS: Partial<Record<Metric, [string, string]>> = {
  record_exchanges: ['record exchange', 'record exchanges'],
  key_reuse: ['key reuse', 'key reuses'],
  decrypt_failures: ['decryption failure', 'decryption failures'],
};

const EPS = 1e-9;

/**
 * Judges one claim against a measurement. `measured` null or n=0 → "not measured" with `reason` (or a default that
 * names what was missing). Marks and claims with measure: null are always "not measured" with the claim's
 * not_measured_reason.
 *   value:        reproduced when the median lies within value ± max(rel × |value|, abs) (edges included)
 *   upper_bound:  reproduced when the p95 is at or below the bound (a median under it is not enough)
 *   lower_bound:  reproduced when the p5 is at or above the bound
 *   count:        reproduced when the total (mean × n) is ≥ at_least or ≤ at_most
 */
export function judgeClaim(claim: Claim, measured: Measured | null, reason?: string): Judgement {
  if (claim.kind === 'mark') return { status: 'not measured', reason: claim.not_measured_reason };
  if (claim.measure === null) {
    return { status: 'not measured', reason: claim.not_measured_reason ?? 'qslab has no measurement for this claim' };
  }
  if (measured === null || !(measured.n > 0)) {
    return { status: 'not measured', reason: reason ?? `no measurement of ${where(claim)}${measured ? ' (n=0)' : ''}` };
  }
  const { unit } = claim;
  const paper = withUnit(claim.value, unit);
  const m = measured;
  switch (claim.kind) {
    case 'value': {
      if (!Number.isFinite(m.median)) return { status: 'not measured', reason: reason ?? `the measurement of ${where(claim)} has no finite median (n=${m.n})` };
      const { rel, abs } = claim.tolerance;
      const relBand = rel !== undefined ? rel * Math.abs(claim.value) : 0;
      const band = Math.max(relBand, abs ?? 0);
      const relText = rel !== undefined ? `±${fmtNum(rel * 100)} %` : '';
      const tol = abs !== undefined && (rel === undefined || abs > relBand)
        ? `±${absDesc(abs, unit)}${rel !== undefined ? ` (the floor under ${relText})` : ''}`
        : relText;
      const diff = m.median - claim.value;
      const head = `measured median ${withUnit(m.median, unit)} ${spread(m, unit)}`;
      if (Math.abs(diff) <= band * (1 + EPS) + EPS) {
        return { status: 'reproduced', reason: `${head} is within ${tol} of the paper's ${paper}` };
      }
      const dir = diff > 0 ? 'above' : 'below';
      const by = rel !== undefined && claim.value !== 0 && (abs === undefined || relBand >= abs) ? pctOf(diff, claim.value) : absDesc(Math.abs(diff), unit);
      return {
        status: 'not reproduced',
        reason: `${head} is ${by} ${dir} the paper's ${paper}, outside ${fmtNum(claim.value - band)}–${withUnit(claim.value + band, unit)} (${tol})`,
      };
    }
    case 'upper_bound':
    case 'lower_bound': {
      const upper = claim.kind === 'upper_bound';
      const bound = claim.tolerance.bound;
      const tail = upper ? m.p95 : m.p5;
      const tailName = upper ? 'p95' : 'p5';
      if (!Number.isFinite(tail) || !Number.isFinite(m.median)) {
        return { status: 'not measured', reason: reason ?? `the measurement of ${where(claim)} has no finite median/${tailName} (n=${m.n})` };
      }
      const ok = (x: number) => (upper ? x <= bound * (1 + EPS) + EPS : x >= bound * (1 - EPS) - EPS);
      const side = upper ? 'under' : 'over';
      const stats = `(p5–p95 ${fmtNum(m.p5)}–${withUnit(m.p95, unit)}, n=${m.n})`;
      if (ok(tail)) {
        const rel = Math.abs(tail - bound) <= EPS * Math.max(1, Math.abs(bound)) ? 'at' : side;
        return {
          status: 'reproduced',
          reason: `measured ${tailName} ${withUnit(tail, unit)} (median ${withUnit(m.median, unit)}, p5–p95 ${fmtNum(m.p5)}–${fmtNum(m.p95)}, n=${m.n}) is ${rel} the paper's bound of ${paper}: 95 % of operations meet it, not just the median`,
        };
      }
      if (ok(m.median)) {
        return {
          status: 'not reproduced',
          reason: `measured median ${withUnit(m.median, unit)} is ${side} the paper's bound of ${paper}, but the ${tailName} ${withUnit(tail, unit)} is not ${stats}: more than 5 % of operations are ${upper ? 'above' : 'below'} the bound`,
        };
      }
      return {
        status: 'not reproduced',
        reason: `measured median ${withUnit(m.median, unit)} ${stats} is ${pctOf(m.median - bound, bound)} ${upper ? 'above' : 'below'} the paper's bound of ${paper}`,
      };
    }
    case 'count': {
      if (m.mean === undefined || !Number.isFinite(m.mean)) {
        return { status: 'not measured', reason: reason ?? `a count claim is judged on the total (mean × n); the measurement of ${where(claim)} has no mean (n=${m.n})` };
      }
      const total = Math.round(m.mean * m.n);
      const [one, many] = COUNT_LABELS[claim.measure.metric] ?? [claim.measure.metric, claim.measure.metric];
      const what = `${fmtNum(total)} ${total === 1 ? one : many}`;
      const over = `in total (mean ${fmtNum(m.mean)} × n=${m.n})`;
      const { at_least, at_most } = claim.tolerance;
      if (at_least !== undefined) {
        return total >= at_least
          ? { status: 'reproduced', reason: `measured ${what} ${over}, at least the paper's ${fmtNum(at_least)}+` }
          : { status: 'not reproduced', reason: `measured ${what} ${over}, ${fmtNum(at_least - total)} short of the paper's ${fmtNum(at_least)}+` };
      }
      const max = at_most ?? claim.value;
      const claimText = max === 0 ? 'none ("without any")' : `at most ${fmtNum(max)}`;
      return total <= max
        ? { status: 'reproduced', reason: `measured ${what} ${over}; the paper claims ${claimText}` }
        : { status: 'not reproduced', reason: `measured ${what} ${over}; the paper claims ${claimText}` };
    }
  }
}
