// The firmware's ML-DSA (firmware/core/pqc/mldsa.c, through firmware/build/qslab-pqc): every ACVP vector of
// fixtures/kat for ML-DSA-44/65/87, and byte-for-byte interop with @noble/post-quantum in both directions
// (keys, deterministic and hedged signatures, contexts, the internal / external-mu interfaces, HashML-DSA),
// including rejection of tampered and malformed inputs. Random cases come from a seeded SHAKE256 stream
// (SEED below), so a failure names a reproducible case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { sha224, sha256, sha384, sha512, sha512_224, sha512_256 } from '@noble/hashes/sha2.js';
import { sha3_224, sha3_256, sha3_384, sha3_512, shake128_32, shake256_64 } from '@noble/hashes/sha3.js';
import { ROOT } from '../paths.js';
import { PqcTool, PqcToolError } from '../pqc/tool.js';
import { runMldsaKat } from '../pqc/kat-mldsa.js';
import type { PqcAlg } from '../pqc/kat.js';

const KAT = join(ROOT, 'fixtures', 'kat');
const FILES = ['ML-DSA-keyGen-FIPS204.json', 'ML-DSA-sigGen-FIPS204.json', 'ML-DSA-sigVer-FIPS204.json'];
const SEED = 'qslab-mldsa-interop-1';
const CASES = 30;

const SETS = [
  { alg: 'ml-dsa-44' as PqcAlg, set: '44', dsa: ml_dsa44 },
  { alg: 'ml-dsa-65' as PqcAlg, set: '65', dsa: ml_dsa65 },
  { alg: 'ml-dsa-87' as PqcAlg, set: '87', dsa: ml_dsa87 },
];

/** ACVP hash names with the matching @noble/hashes function (SHAKEs at their FIPS 204 output lengths). */
const PREHASHES = [
  ['SHA2-224', sha224], ['SHA2-256', sha256], ['SHA2-384', sha384], ['SHA2-512', sha512],
  ['SHA2-512/224', sha512_224], ['SHA2-512/256', sha512_256], ['SHA3-224', sha3_224], ['SHA3-256', sha3_256],
  ['SHA3-384', sha3_384], ['SHA3-512', sha3_512], ['SHAKE-128', shake128_32], ['SHAKE-256', shake256_64],
] as const;

/** Deterministic bytes: SHAKE256(SEED ":" label ":" counter). */
function prng(label: string): (n: number) => Uint8Array {
  let i = 0;
  return (n) => new Uint8Array(createHash('shake256', { outputLength: n }).update(`${SEED}:${label}:${i++}`).digest());
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const eqBytes = (a: Uint8Array, b: Uint8Array, msg: string): void => assert.equal(hex(a), hex(b), msg);
const shake256 = (n: number, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('shake256', { outputLength: n });
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
/** True when f rejects: returns false or throws. */
const rejects = (f: () => boolean): boolean => {
  try {
    return f() === false;
  } catch {
    return true;
  }
};
const flipBit = (b: Uint8Array, bit: number): Uint8Array => {
  const c = b.slice();
  c[bit >> 3] ^= 1 << (bit & 7);
  return c;
};

let tool: PqcTool;
before(() => {
  tool = new PqcTool().start();
});
after(async () => {
  await tool.stop();
});

/** C verification verdict: true / false, or the tool's error code. */
async function cVerify(set: string, iface: string, ph: string, pk: Uint8Array, msg: Uint8Array, ctx: Uint8Array, sig: Uint8Array): Promise<boolean | string> {
  try {
    const r = await tool.call('dsa.verify', set, iface, ph, pk, msg, ctx, sig);
    assert.ok(r[0] === '1' || r[0] === '0', `verify answer ${r.join(' ')}`);
    return r[0] === '1';
  } catch (e) {
    if (e instanceof PqcToolError) return e.code;
    throw e;
  }
}

test('ACVP: every ML-DSA keyGen / sigGen / sigVer vector of fixtures/kat passes for 44, 65 and 87', async () => {
  const t0 = Date.now();
  const seen = new Set<string>();
  for (const { alg } of SETS) {
    const results = await Promise.all(FILES.map((f) => runMldsaKat(tool, join(KAT, f), alg)));
    for (const [i, r] of results.entries()) {
      process.stderr.write(`  ${alg} ${r.mode}: ${r.passed}/${r.total} passed, ${r.failed} failed, ${r.skipped} skipped\n`);
      assert.ok(r.total > 0, `${alg} ${FILES[i]}: no test cases`);
      assert.deepEqual(r.failures, [], `${alg} ${FILES[i]}: failures`);
      assert.equal(r.skipped, 0, `${alg} ${FILES[i]}: skipped ${JSON.stringify(r.skips)}`);
      assert.equal(r.passed, r.total);
      seen.add(r.mode);
    }
  }
  assert.deepEqual([...seen].sort(), ['keyGen', 'sigGen', 'sigVer']);
  process.stderr.write(`  ACVP ML-DSA: ${Date.now() - t0} ms\n`);

  // The fixtures cover every kind of case for every set, so the passes above mean what they say.
  type G = { parameterSet: string; deterministic?: boolean; signatureInterface: string; preHash?: string; externalMu?: boolean; tests: { testPassed?: boolean; hashAlg?: string }[] };
  const load = (f: string): G[] => (JSON.parse(readFileSync(join(KAT, f), 'utf8')) as { testGroups: G[] }).testGroups;
  const sigGen = load(FILES[1]!), sigVer = load(FILES[2]!);
  const kinds = (g: G): string => g.signatureInterface === 'internal' ? (g.externalMu ? 'mu' : 'internal') : `external/${g.preHash}`;
  for (const { alg } of SETS) {
    const ps = alg.toUpperCase();
    const gen = sigGen.filter((g) => g.parameterSet === ps && g.tests.length);
    for (const det of [true, false]) {
      assert.deepEqual(new Set(gen.filter((g) => g.deterministic === det).map(kinds)), new Set(['mu', 'internal', 'external/pure', 'external/preHash']), `${alg} sigGen deterministic=${det}`);
    }
    const ver = sigVer.filter((g) => g.parameterSet === ps && g.tests.length);
    assert.deepEqual(new Set(ver.map(kinds)), new Set(['mu', 'internal', 'external/pure', 'external/preHash']), `${alg} sigVer`);
    const verdicts = new Set(ver.flatMap((g) => g.tests.map((t) => t.testPassed)));
    assert.ok(verdicts.has(true) && verdicts.has(false), `${alg} sigVer has valid and invalid signatures`);
  }
  const hashes = new Set([...sigGen, ...sigVer].flatMap((g) => g.tests.map((t) => t.hashAlg)).filter((h) => h && h !== 'none'));
  assert.deepEqual([...hashes].sort(), PREHASHES.map(([n]) => n).sort(), 'every HashML-DSA pre-hash appears in the vectors');
});

test('ACVP runner: a wrong expected value is a failure with a reason, a prompt-only case a skip with a reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-kat-'));
  try {
    const sg = JSON.parse(readFileSync(join(KAT, FILES[1]!), 'utf8')) as { testGroups: { parameterSet: string; tests: Record<string, unknown>[] }[] };
    const g = sg.testGroups.find((x) => x.parameterSet === 'ML-DSA-65')!;
    const sig = g.tests[0]!.signature as string;
    g.tests[0]!.signature = sig.slice(0, 100) + (sig[100] === '0' ? '1' : '0') + sig.slice(101);   // wrong expected signature
    delete g.tests[1]!.signature;                                                                  // prompt only
    const sgFile = join(dir, 'sigGen.json');
    writeFileSync(sgFile, JSON.stringify(sg));
    const r = await runMldsaKat(tool, sgFile, 'ml-dsa-65');
    assert.equal(r.failed, 1);
    assert.match(r.failures[0]!.reason, /signature: differs at byte 50/);
    assert.equal(r.skipped, 1);
    assert.match(r.skips[0]!.reason, /no hex field "signature"/);
    assert.equal(r.passed, r.total - 2);

    const sv = JSON.parse(readFileSync(join(KAT, FILES[2]!), 'utf8')) as { testGroups: { parameterSet: string; tests: Record<string, unknown>[] }[] };
    const v = sv.testGroups.find((x) => x.parameterSet === 'ML-DSA-44')!;
    v.tests[0]!.testPassed = !v.tests[0]!.testPassed;                                              // wrong verdict
    const svFile = join(dir, 'sigVer.json');
    writeFileSync(svFile, JSON.stringify(sv));
    const rv = await runMldsaKat(tool, svFile, 'ml-dsa-44');
    assert.equal(rv.failed, 1);
    assert.match(rv.failures[0]!.reason, /signature (accepted|rejected), expected (accept|reject)/);

    await assert.rejects(runMldsaKat(tool, join(KAT, 'ML-KEM-keyGen-FIPS203.json'), 'ml-dsa-44'), /not ML-DSA/);
    await assert.rejects(runMldsaKat(tool, svFile, 'ml-kem-768'), /not an ML-DSA parameter set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tool: argument errors are named (set, lengths, context, interface, pre-hash)', async () => {
  const code = async (...args: (string | Uint8Array)[]): Promise<string> => {
    try {
      await tool.call(args[0] as string, ...args.slice(1));
      return 'ok';
    } catch (e) {
      return (e as PqcToolError).code;
    }
  };
  const xi = new Uint8Array(32);
  const [pk, sk] = await tool.bytes('dsa.keygen', '44', xi);
  const z = new Uint8Array(0);
  assert.equal(await code('dsa.keygen', '66', xi), 'E_PARAM');
  assert.equal(await code('dsa.keygen', '44', new Uint8Array(31)), 'E_INPUT');
  assert.equal(await code('dsa.keygen', '44'), 'E_ARGS');
  assert.equal(await code('dsa.sign', '44', 'external', 'pure', sk!.subarray(1), z, z, z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'external', 'pure', sk!, z, new Uint8Array(256), z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'external', 'pure', sk!, z, new Uint8Array(255), z), 'ok');
  assert.equal(await code('dsa.sign', '44', 'external', 'pure', sk!, z, z, new Uint8Array(31)), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'mu', 'pure', sk!, new Uint8Array(63), z, z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'internal', 'pure', sk!, z, new Uint8Array(1), z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'internal', 'SHA2-256', sk!, z, z, z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'external', 'MD5', sk!, z, z, z), 'E_INPUT');
  assert.equal(await code('dsa.sign', '44', 'other', 'pure', sk!, z, z, z), 'E_INPUT');
  assert.equal(await code('dsa.verify', '44', 'external', 'pure', pk!.subarray(1), z, z, new Uint8Array(2420)), 'E_INPUT');
  assert.equal(await code('dsa.verify', '44', 'external', 'pure', pk!, z, z, new Uint8Array(2420)), 'ok');
});

for (const { alg, set, dsa } of SETS) {
  test(`interop with @noble/post-quantum: ${alg}, ${CASES} seeded cases, both directions`, async () => {
    const rnd = prng(alg);
    const L = dsa.lengths;
    const sigLen = L.signature ?? assert.fail('noble lengths.signature');
    type Case = {
      seed: Uint8Array; msg: Uint8Array; ctx: Uint8Array; rnd: Uint8Array; mprime: Uint8Array; ph: (typeof PREHASHES)[number];
      pk: Uint8Array; sk: Uint8Array;
    };
    const cases: Case[] = [];
    for (let i = 0; i < CASES; i++) {
      const seed = rnd(32);
      const [a, b] = rnd(2);
      const mlen = i % 10 === 9 ? 3000 + a! * 8 : a!;   // mostly short, some multi-block messages
      const ctx = i % 3 === 0 ? new Uint8Array(0) : rnd(i % 5 === 1 ? 255 : b! % 64);
      cases.push({ seed, msg: rnd(mlen), ctx, rnd: rnd(32), mprime: rnd(b!), ph: PREHASHES[i % PREHASHES.length]!, pk: new Uint8Array(0), sk: new Uint8Array(0) });
    }

    // Keys: same seed, identical bytes (all C requests in flight at once).
    const cKeys = await Promise.all(cases.map((c) => tool.bytes('dsa.keygen', set, c.seed)));
    for (const [i, c] of cases.entries()) {
      const nk = dsa.keygen(c.seed);
      assert.equal(cKeys[i]![0]!.length, L.publicKey);
      assert.equal(cKeys[i]![1]!.length, L.secretKey);
      eqBytes(cKeys[i]![0]!, nk.publicKey, `case ${i}: public key`);
      eqBytes(cKeys[i]![1]!, nk.secretKey, `case ${i}: secret key`);
      c.pk = nk.publicKey;
      c.sk = nk.secretKey;
    }

    // Signatures from C: deterministic without / with context, hedged, internal, external mu, HashML-DSA.
    const zero = new Uint8Array(0);
    const sign = (c: Case, iface: string, ph: string, m: Uint8Array, ctx: Uint8Array, r: Uint8Array): Promise<Uint8Array> =>
      tool.call('dsa.sign', set, iface, ph, c.sk, m, ctx, r).then(([s, att]) => {
        assert.ok(Number(att) >= 1, `attempts ${att}`);
        return new Uint8Array(Buffer.from(s!, 'hex'));
      });
    const mus = cases.map((c) => shake256(64, shake256(64, c.pk), c.mprime));
    const cSigs = await Promise.all(cases.map((c, i) => Promise.all([
      sign(c, 'external', 'pure', c.msg, zero, zero),
      sign(c, 'external', 'pure', c.msg, c.ctx, zero),
      sign(c, 'external', 'pure', c.msg, c.ctx, c.rnd),
      sign(c, 'internal', 'pure', c.mprime, zero, c.rnd),
      sign(c, 'mu', 'pure', mus[i]!, zero, zero),
      sign(c, 'external', c.ph[0], c.msg, c.ctx, zero),
    ])));

    let prehashed = 0;
    const verifies: Promise<void>[] = [];
    const expectC = (p: Promise<boolean | string>, want: boolean | string, what: string): void => {
      verifies.push(p.then((v) => assert.equal(v, want, what)));
    };
    for (const [i, c] of cases.entries()) {
      const [det, detCtx, hedged, internal, mu, pre] = cSigs[i]!;
      const tag = `case ${i}`;
      for (const s of cSigs[i]!) assert.equal(s.length, L.signature);
      // Byte-for-byte equal signatures.
      eqBytes(det!, dsa.sign(c.msg, c.sk, { extraEntropy: false }), `${tag}: deterministic signature`);
      const nDetCtx = dsa.sign(c.msg, c.sk, { context: c.ctx, extraEntropy: false });
      eqBytes(detCtx!, nDetCtx, `${tag}: deterministic signature with context`);
      const nHedged = dsa.sign(c.msg, c.sk, { context: c.ctx, extraEntropy: c.rnd });
      eqBytes(hedged!, nHedged, `${tag}: hedged signature (same rnd)`);
      eqBytes(internal!, dsa.internal.sign(c.mprime, c.sk, { extraEntropy: c.rnd }), `${tag}: Sign_internal`);
      eqBytes(mu!, dsa.internal.sign(mus[i]!, c.sk, { extraEntropy: false, externalMu: true }), `${tag}: external mu`);
      eqBytes(mu!, dsa.internal.sign(c.mprime, c.sk, { extraEntropy: false }), `${tag}: external mu = internal on M'`);
      let nPre: Uint8Array | undefined;
      let signer: ReturnType<typeof dsa.prehash> | undefined;
      try {
        signer = dsa.prehash(c.ph[1]);
      } catch {
        // noble refuses pre-hashes weaker than the set's security level (FIPS 204 allows them; ACVP covers them in C)
      }
      if (signer) {
        nPre = signer.sign(c.msg, c.sk, { context: c.ctx, extraEntropy: false });
        eqBytes(pre!, nPre, `${tag}: HashML-DSA ${c.ph[0]}`);
        assert.ok(signer.verify(pre!, c.msg, c.pk, { context: c.ctx }), `${tag}: noble verifies C HashML-DSA`);
        expectC(cVerify(set, 'external', c.ph[0], c.pk, c.msg, c.ctx, nPre), true, `${tag}: C verifies noble HashML-DSA`);
        expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, nPre), false, `${tag}: HashML-DSA is not pure ML-DSA`);
        prehashed++;
      }

      // Both accept each other's signatures (with and without context).
      assert.ok(dsa.verify(det!, c.msg, c.pk), `${tag}: noble verifies C signature`);
      assert.ok(dsa.verify(hedged!, c.msg, c.pk, { context: c.ctx }), `${tag}: noble verifies C hedged signature with context`);
      const nRandom = dsa.sign(c.msg, c.sk, { context: c.ctx });   // noble's own randomness
      assert.ok(dsa.verify(nRandom, c.msg, c.pk, { context: c.ctx }));
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, nRandom), true, `${tag}: C verifies noble hedged signature with context`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, zero, dsa.sign(c.msg, c.sk)), true, `${tag}: C verifies noble signature`);
      expectC(cVerify(set, 'internal', 'pure', c.pk, c.mprime, zero, internal!), true, `${tag}: C Verify_internal`);
      expectC(cVerify(set, 'mu', 'pure', c.pk, mus[i]!, zero, internal!), true, `${tag}: C verify on external mu`);

      // Flipped signature bit: both reject.
      const bit = (rnd(2)[0]! << 8 | rnd(1)[0]!) % (sigLen * 8);
      const bad = flipBit(nRandom, bit);
      assert.ok(rejects(() => dsa.verify(bad, c.msg, c.pk, { context: c.ctx })), `${tag}: noble rejects flipped bit ${bit}`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, bad), false, `${tag}: C rejects flipped bit ${bit}`);
      // Flipped message bit.
      if (c.msg.length) {
        const m2 = flipBit(c.msg, i % (c.msg.length * 8));
        assert.ok(rejects(() => dsa.verify(nRandom, m2, c.pk, { context: c.ctx })));
        expectC(cVerify(set, 'external', 'pure', c.pk, m2, c.ctx, nRandom), false, `${tag}: C rejects modified message`);
      }
      // Wrong context: another context, or none where one was signed.
      const ctx2 = c.ctx.length ? flipBit(c.ctx, 0) : new Uint8Array([0]);
      assert.ok(rejects(() => dsa.verify(nDetCtx, c.msg, c.pk, { context: ctx2 })), `${tag}: noble rejects wrong context`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, ctx2, detCtx!), false, `${tag}: C rejects wrong context`);
      if (c.ctx.length) expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, zero, detCtx!), false, `${tag}: C rejects missing context`);
      // Signature by another key.
      const other = cases[(i + 1) % CASES]!;
      const byOther = dsa.sign(c.msg, other.sk, { context: c.ctx, extraEntropy: false });
      assert.ok(rejects(() => dsa.verify(byOther, c.msg, c.pk, { context: c.ctx })), `${tag}: noble rejects other key`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, byOther), false, `${tag}: C rejects signature by another key`);
      // Wrong lengths: signature one byte short / long (invalid), public key one byte short (malformed input).
      const short = detCtx!.subarray(0, sigLen - 1);
      const long = new Uint8Array([...detCtx!, 0]);
      assert.ok(rejects(() => dsa.verify(short, c.msg, c.pk, { context: c.ctx })));
      assert.ok(rejects(() => dsa.verify(long, c.msg, c.pk, { context: c.ctx })));
      assert.ok(rejects(() => dsa.verify(detCtx!, c.msg, c.pk.subarray(1), { context: c.ctx })));
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, short), false, `${tag}: C rejects short signature`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, long), false, `${tag}: C rejects long signature`);
      expectC(cVerify(set, 'external', 'pure', c.pk.subarray(1), c.msg, c.ctx, detCtx!), 'E_INPUT', `${tag}: C rejects short public key`);
      expectC(cVerify(set, 'external', 'pure', c.pk, c.msg, c.ctx, new Uint8Array(0)), false, `${tag}: C rejects empty signature`);
    }
    await Promise.all(verifies);
    assert.ok(prehashed >= 5, `HashML-DSA interop cases: ${prehashed}`);
    process.stderr.write(`  ${alg}: ${CASES} cases, ${verifies.length} C verifications, ${prehashed} HashML-DSA interop cases\n`);
  });
}
