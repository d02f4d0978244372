// ML-DSA (FIPS 204) known-answer tests: ACVP keyGen, sigGen and sigVer vector files through the firmware's C code
// (qslab-pqc dsa.* commands). Every test case of the requested parameter set is run and compared byte for byte;
// a case that cannot be run is counted as skipped with the reason, never dropped.
//
// ACVP test groups map to tool arguments as follows:
//   signatureInterface "external"                     -> iface external (ML-DSA.Sign / Verify, or HashML-DSA)
//   signatureInterface "internal", externalMu false   -> iface internal (Sign_internal / Verify_internal on M')
//   signatureInterface "internal", externalMu true    -> iface mu       (on the given 64-byte mu)
//   preHash "preHash"                                 -> ph = the case's hashAlg (SHA2-256, SHAKE-128, ...)
//   preHash "pure" / "none" / absent                  -> ph pure
//   deterministic true (sigGen)                       -> rnd = 32 zero bytes; false -> the case's rnd
import { hexDiff, runKatFile, toolArg, type KatOutcome, type KatResult, type PqcAlg } from './kat.js';
import { PqcToolError, type PqcTool } from './tool.js';

type Test = { tcId: number } & Record<string, unknown>;
type Group = { tgId: number } & Record<string, unknown>;

/** What one test case turned into: a verdict, or a reason it could not be run. */
type Outcome = KatOutcome;

const SETS: Partial<Record<PqcAlg, string>> = { 'ml-dsa-44': '44', 'ml-dsa-65': '65', 'ml-dsa-87': '87' };

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const ZERO_RND = '00'.repeat(32);

/** A hex field of the test case, else of its group (older ACVP files keep keys at group level); lower-cased. */
function hexField(t: Test, g: Group, name: string): string | undefined {
  const v = t[name] ?? g[name];
  return typeof v === 'string' && HEX.test(v) ? v.toLowerCase() : undefined;
}

/** A string field of the test case, else of its group. */
function strField(t: Test, g: Group, name: string): string | undefined {
  const v = t[name] ?? g[name];
  return typeof v === 'string' ? v : undefined;
}


/** Tool interface and pre-hash of a group/case, or the reason it cannot be mapped. */
function mode(t: Test, g: Group): { iface: 'internal' | 'external' | 'mu'; ph: string } | string {
  const si = g.signatureInterface;
  let iface: 'internal' | 'external' | 'mu';
  if (si === 'external') iface = 'external';
  else if (si === 'internal') iface = g.externalMu === true ? 'mu' : 'internal';
  else return `signatureInterface ${JSON.stringify(si)} is not one this runner knows (internal, external)`;
  let ph = 'pure';
  if (g.preHash === 'preHash') {
    if (iface !== 'external') return 'preHash with the internal interface';
    const h = strField(t, g, 'hashAlg');
    if (!h || h === 'none') return 'preHash group without a hashAlg';
    ph = h;
  } else if (g.preHash !== undefined && g.preHash !== 'pure' && g.preHash !== 'none') {
    return `preHash ${JSON.stringify(g.preHash)} is not one this runner knows (pure, preHash, none)`;
  }
  return { iface, ph };
}

async function runOne(tool: PqcTool, set: string, acvpMode: string, g: Group, t: Test): Promise<Outcome> {
  const call = async (cmd: string, ...args: string[]): Promise<string[] | PqcToolError> => {
    try {
      return await tool.call(cmd, set, ...args);
    } catch (e) {
      if (e instanceof PqcToolError && e.code !== 'E_TOOL') return e;
      throw e;   // the tool died: not a verdict on this case
    }
  };
  const missing = (name: string): Outcome => ({ skip: `no hex field "${name}" in the test case (prompt-only file?)` });
  const need = (names: string[]): Record<string, string> | Outcome => {
    const r: Record<string, string> = {};
    for (const n of names) {
      const v = hexField(t, g, n);
      if (v === undefined) return missing(n);
      r[n] = v;
    }
    return r;
  };
  const isOutcome = (x: Record<string, string> | Outcome): x is Outcome => 'pass' in x || 'skip' in x;

  if (acvpMode === 'keyGen') {
    const f = need(['seed', 'pk', 'sk']);
    if (isOutcome(f)) return f;
    const r = await call('dsa.keygen', f.seed!);
    if (r instanceof PqcToolError) return { pass: false, reason: `keygen: ${r.message}` };
    const reasons = [hexDiff('pk', r[0], f.pk!), hexDiff('sk', r[1], f.sk!)].filter(Boolean);
    return reasons.length ? { pass: false, reason: reasons.join('; ') } : { pass: true };
  }
  if (acvpMode !== 'sigGen' && acvpMode !== 'sigVer') return { skip: `ACVP mode "${acvpMode}" is not an ML-DSA mode this runner knows` };

  const m = mode(t, g);
  if (typeof m === 'string') return { skip: m };
  const input = m.iface === 'mu' ? 'mu' : 'message';
  const f = need([input, 'signature', acvpMode === 'sigGen' ? 'sk' : 'pk']);
  if (isOutcome(f)) return f;
  // Only the external interface has a context; an absent one there is the empty context.
  let ctx = '';
  if (m.iface === 'external' && (t.context !== undefined || g.context !== undefined)) {
    const c = hexField(t, g, 'context');
    if (c === undefined) return missing('context');
    ctx = c;
  }

  if (acvpMode === 'sigGen') {
    let rnd = ZERO_RND;
    if (g.deterministic === false) {
      const r = hexField(t, g, 'rnd');
      if (r === undefined) return missing('rnd');
      rnd = r;
    } else if (g.deterministic !== true) {
      return { skip: 'sigGen group without a boolean "deterministic"' };
    }
    const r = await call('dsa.sign', m.iface, m.ph, f.sk!, toolArg(f[input]!), toolArg(ctx), rnd);
    if (r instanceof PqcToolError) return { pass: false, reason: `sign: ${r.message}` };
    const d = hexDiff('signature', r[0], f.signature!);
    return d ? { pass: false, reason: d } : { pass: true };
  }

  if (typeof t.testPassed !== 'boolean') return { skip: 'no boolean "testPassed" in the test case (prompt-only file?)' };
  const r = await call('dsa.verify', m.iface, m.ph, f.pk!, toolArg(f[input]!), toolArg(ctx), toolArg(f.signature!));
  if (r instanceof PqcToolError) return { pass: false, reason: `verify: ${r.message}` };
  const ok = r[0] === '1';
  if (ok === t.testPassed) return { pass: true };
  const why = typeof t.reason === 'string' ? ` (${t.reason})` : '';
  return { pass: false, reason: `signature ${ok ? 'accepted' : 'rejected'}, expected ${t.testPassed ? 'accept' : 'reject'}${why}` };
}

export async function runMldsaKat(tool: PqcTool, file: string, alg: PqcAlg): Promise<KatResult> {
  const set = SETS[alg];
  if (!set) throw new Error(`runMldsaKat: ${alg} is not an ML-DSA parameter set`);
  return runKatFile(file, 'ML-DSA', alg, (mode, g, t) => runOne(tool, set, mode, g, t));
}
