// Known-answer tests: ACVP vector files run through the firmware's C implementation (firmware/build/qslab-pqc).
// The per-algorithm runners (kat-mlkem.ts, kat-mldsa.ts) map ACVP test groups to tool commands.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export const PQC_ALGS = ['ml-kem-512', 'ml-kem-768', 'ml-kem-1024', 'ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87'] as const;
export type PqcAlg = (typeof PQC_ALGS)[number];

export interface KatFailure {
  tgId: number;
  tcId: number;
  reason: string;
}

export interface KatResult {
  file: string;
  mode: string;          // ACVP "mode" (keyGen, encapDecap, sigGen, sigVer)
  alg: PqcAlg;
  total: number;         // test cases of this parameter set in the file
  passed: number;
  failed: number;
  skipped: number;       // cases the runner cannot run, each with a reason in `skips`
  failures: KatFailure[];
  skips: { reason: string; count: number }[];
}

/** ACVP parameter set name for an algorithm id ("ml-kem-768" → "ML-KEM-768"). */
export function acvpParameterSet(alg: PqcAlg): string {
  return alg.toUpperCase();
}

export interface AcvpFile {
  algorithm: string;     // "ML-KEM" | "ML-DSA"
  mode: string;
  testGroups: ({ tgId: number; parameterSet?: string; tests: ({ tcId: number } & Record<string, unknown>)[] } & Record<string, unknown>)[];
}

/** Reads and shape-checks an ACVP vector file; errors name the file and what is wrong. */
export function readAcvp(file: string): AcvpFile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable JSON file (${(e as Error).message})`);
  }
  const d = data as Partial<AcvpFile>;
  if (typeof d.algorithm !== 'string' || typeof d.mode !== 'string' || !Array.isArray(d.testGroups)) {
    throw new Error(`${file}: not an ACVP vector file (needs "algorithm", "mode" and "testGroups")`);
  }
  for (const [i, g] of d.testGroups.entries()) {
    if (typeof g?.tgId !== 'number' || !Array.isArray(g.tests)) throw new Error(`${file}: testGroups[${i}] lacks tgId or tests`);
  }
  return d as AcvpFile;
}

/** What one test case came to. */
export type KatOutcome = { pass: true } | { pass: false; reason: string } | { skip: string };

type AcvpGroup = AcvpFile['testGroups'][number];
type AcvpTest = AcvpGroup['tests'][number];

/**
 * Runs every case of `alg`'s parameter set in an ACVP file through `runCase` (all in flight at once: the tool
 * answers in order) and tallies them. A file without that parameter set says so instead of passing silently.
 */
export async function runKatFile(
  file: string, family: 'ML-KEM' | 'ML-DSA', alg: PqcAlg,
  runCase: (mode: string, g: AcvpGroup, t: AcvpTest) => Promise<KatOutcome>,
): Promise<KatResult> {
  const acvp = readAcvp(file);
  if (acvp.algorithm !== family) throw new Error(`${file}: an ${acvp.algorithm} file, not ${family}`);
  const ps = acvpParameterSet(alg);
  const result: KatResult = { file, mode: acvp.mode, alg, total: 0, passed: 0, failed: 0, skipped: 0, failures: [], skips: [] };
  const jobs: Promise<{ tgId: number; tcId: number; o: KatOutcome }>[] = [];
  for (const g of acvp.testGroups) {
    if (g.parameterSet !== ps) continue;
    for (const t of g.tests) {
      result.total++;
      jobs.push(runCase(acvp.mode, g, t).then((o) => ({ tgId: g.tgId, tcId: t.tcId, o })));
    }
  }
  for (const { tgId, tcId, o } of await Promise.all(jobs)) {
    if ('skip' in o) {
      result.skipped++;
      const s = result.skips.find((x) => x.reason === o.skip);
      if (s) s.count++;
      else result.skips.push({ reason: o.skip, count: 1 });
    } else if (o.pass) result.passed++;
    else {
      result.failed++;
      result.failures.push({ tgId, tcId, reason: o.reason });
    }
  }
  if (result.total === 0) result.skips.push({ reason: `no ${ps} test cases in ${basename(file)}`, count: 0 });
  return result;
}

/** "" when equal, else where the hex strings first differ (in bytes) and their lengths. */
export function hexDiff(what: string, got: string | undefined, want: string): string {
  if (got === want) return '';
  if (got === undefined) return `${what}: missing in the answer`;
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  return `${what}: differs at byte ${Math.floor(i / 2)} (got ${got.length / 2} bytes, expected ${want.length / 2})`;
}

/** A hex argument for the qslab-pqc tool ("-" when empty). */
export const toolArg = (hex: string): string => (hex.length ? hex : '-');
