// Known-answer tests: ACVP vector files run through the firmware's C implementation (firmware/build/qslab-pqc).
// The per-algorithm runners (kat-mlkem.ts, kat-mldsa.ts) map ACVP test groups to tool commands.
import { readFileSync } from 'node:fs';

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
