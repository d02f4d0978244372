// ML-KEM (FIPS 203) known-answer tests: ACVP keyGen and encapDecap vector files through the firmware's C code
// (qslab-pqc kem.* commands). Every test case of the requested parameter set is run and compared byte for byte;
// a case that cannot be run is counted as skipped with the reason, never dropped.
import { hexDiff, runKatFile, toolArg, type KatOutcome, type KatResult, type PqcAlg } from './kat.js';
import { PqcToolError, type PqcTool } from './tool.js';

type Test = { tcId: number } & Record<string, unknown>;

/** What one test case turned into: a verdict, or a reason it could not be run. */
type Outcome = KatOutcome;

const SETS: Partial<Record<PqcAlg, string>> = { 'ml-kem-512': '512', 'ml-kem-768': '768', 'ml-kem-1024': '1024' };

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** The named hex fields of a test, lower-cased; or the name of the first one missing / not hex. */
function fields(t: Test, names: string[]): Record<string, string> | string {
  const r: Record<string, string> = {};
  for (const n of names) {
    const v = t[n];
    if (typeof v !== 'string' || !HEX.test(v)) return n;
    r[n] = v.toLowerCase();
  }
  return r;
}


async function runOne(tool: PqcTool, set: string, mode: string, fn: string | undefined, t: Test): Promise<Outcome> {
  const call = async (cmd: string, ...args: string[]): Promise<string[] | PqcToolError> => {
    try {
      return await tool.call(cmd, set, ...args.map(toolArg));
    } catch (e) {
      if (e instanceof PqcToolError && e.code !== 'E_TOOL') return e;
      throw e;   // the tool died: not a verdict on this case
    }
  };
  const verdict = (reasons: string[]): Outcome => {
    const r = reasons.filter(Boolean);
    return r.length ? { pass: false, reason: r.join('; ') } : { pass: true };
  };
  const missing = (name: string): Outcome => ({ skip: `no hex field "${name}" in the test case (prompt-only file?)` });

  if (mode === 'keyGen') {
    const f = fields(t, ['d', 'z', 'ek', 'dk']);
    if (typeof f === 'string') return missing(f);
    const r = await call('kem.keygen', f.d!, f.z!);
    if (r instanceof PqcToolError) return { pass: false, reason: `keygen: ${r.message}` };
    return verdict([hexDiff('ek', r[0], f.ek!), hexDiff('dk', r[1], f.dk!)]);
  }
  if (mode !== 'encapDecap') return { skip: `ACVP mode "${mode}" is not an ML-KEM mode this runner knows` };

  switch (fn) {
    case 'encapsulation': {
      const f = fields(t, ['ek', 'm', 'c', 'k']);
      if (typeof f === 'string') return missing(f);
      const r = await call('kem.encaps', f.ek!, f.m!);
      if (r instanceof PqcToolError) return { pass: false, reason: `encaps: ${r.message}` };
      return verdict([hexDiff('c', r[0], f.c!), hexDiff('k', r[1], f.k!)]);
    }
    case 'decapsulation': {
      const f = fields(t, ['dk', 'c', 'k']);
      if (typeof f === 'string') return missing(f);
      const r = await call('kem.decaps', f.dk!, f.c!);
      if (r instanceof PqcToolError) return { pass: false, reason: `decaps: ${r.message}` };
      return verdict([hexDiff('k', r[0], f.k!)]);
    }
    case 'encapsulationKeyCheck':
    case 'decapsulationKeyCheck': {
      const key = fn === 'encapsulationKeyCheck' ? 'ek' : 'dk';
      const f = fields(t, [key]);
      if (typeof f === 'string') return missing(f);
      if (typeof t.testPassed !== 'boolean') return { skip: 'no boolean "testPassed" in the test case (prompt-only file?)' };
      const r = await call(`kem.check_${key}`, f[key]!);
      // A key of the wrong length fails the check (FIPS 203 §7: type check); the tool says so with E_INPUT.
      const ok = r instanceof PqcToolError ? (r.code === 'E_INPUT' ? false : undefined) : r[0] === '1';
      if (ok === undefined) return { pass: false, reason: `check_${key}: ${(r as PqcToolError).message}` };
      return ok === t.testPassed ? { pass: true } : { pass: false, reason: `${key} check ${ok ? 'passed' : 'failed'}, expected ${t.testPassed ? 'pass' : 'fail'}` };
    }
    default:
      return { skip: `encapDecap function "${String(fn)}" is not one this runner knows` };
  }
}

export async function runMlkemKat(tool: PqcTool, file: string, alg: PqcAlg): Promise<KatResult> {
  const set = SETS[alg];
  if (!set) throw new Error(`runMlkemKat: ${alg} is not an ML-KEM parameter set`);
  return runKatFile(file, 'ML-KEM', alg, (mode, g, t) => runOne(tool, set, mode, typeof g.function === 'string' ? g.function : undefined, t));
}
