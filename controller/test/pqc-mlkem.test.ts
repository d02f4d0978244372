// The firmware's ML-KEM (firmware/core/pqc/mlkem.c, through firmware/build/qslab-pqc): every ACVP vector of
// fixtures/kat for ML-KEM-512/768/1024, and byte-for-byte interop with @noble/post-quantum in both directions,
// including malformed inputs and implicit rejection. Random cases come from a seeded SHAKE256 stream
// (SEED below), so a failure names a reproducible case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ROOT } from '../paths.js';
import { PqcTool, PqcToolError } from '../pqc/tool.js';
import { runMlkemKat } from '../pqc/kat-mlkem.js';
import type { PqcAlg } from '../pqc/kat.js';

const KAT = join(ROOT, 'fixtures', 'kat');
const FILES = ['ML-KEM-keyGen-FIPS203.json', 'ML-KEM-encapDecap-FIPS203.json'];
const SEED = 'qslab-mlkem-interop-1';
const CASES = 50;
const Q = 3329;

const SETS = [
  { alg: 'ml-kem-512' as PqcAlg, set: '512', k: 2, kem: ml_kem512 },
  { alg: 'ml-kem-768' as PqcAlg, set: '768', k: 3, kem: ml_kem768 },
  { alg: 'ml-kem-1024' as PqcAlg, set: '1024', k: 4, kem: ml_kem1024 },
];

/** Deterministic bytes: SHAKE256(SEED ":" label ":" counter). */
function prng(label: string): (n: number) => Uint8Array {
  let i = 0;
  return (n) => new Uint8Array(createHash('shake256', { outputLength: n }).update(`${SEED}:${label}:${i++}`).digest());
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const eqBytes = (a: Uint8Array, b: Uint8Array, msg: string): void => assert.equal(hex(a), hex(b), msg);
const isInput = (e: unknown): boolean => e instanceof PqcToolError && e.code === 'E_INPUT';

let tool: PqcTool;
before(() => {
  tool = new PqcTool().start();
});
after(async () => {
  await tool.stop();
});

test('ACVP: every ML-KEM keyGen / encapDecap vector of fixtures/kat passes for 512, 768 and 1024', async () => {
  const seen = new Set<string>();
  for (const { alg } of SETS) {
    for (const f of FILES) {
      const r = await runMlkemKat(tool, join(KAT, f), alg);
      process.stderr.write(`  ${alg} ${r.mode}: ${r.passed}/${r.total} passed, ${r.failed} failed, ${r.skipped} skipped\n`);
      assert.ok(r.total > 0, `${alg} ${f}: no test cases`);
      assert.deepEqual(r.failures, [], `${alg} ${f}: failures`);
      assert.equal(r.skipped, 0, `${alg} ${f}: skipped ${JSON.stringify(r.skips)}`);
      assert.equal(r.passed, r.total);
      seen.add(r.mode);
    }
  }
  assert.deepEqual([...seen].sort(), ['encapDecap', 'keyGen']);
  // Every encapDecap function is present for every set (so a pass above covers all four kinds of case).
  const ed = JSON.parse(readFileSync(join(KAT, FILES[1]!), 'utf8')) as { testGroups: { parameterSet: string; function: string; tests: unknown[] }[] };
  for (const { alg } of SETS) {
    const fns = new Set(ed.testGroups.filter((g) => g.parameterSet === alg.toUpperCase() && g.tests.length).map((g) => g.function));
    for (const fn of ['encapsulation', 'decapsulation']) assert.ok(fns.has(fn), `${alg}: ${fn} cases`);
  }
  const allFns = new Set(ed.testGroups.map((g) => g.function));
  for (const fn of ['encapsulationKeyCheck', 'decapsulationKeyCheck']) assert.ok(allFns.has(fn), `${fn} cases`);
});

test('ACVP runner: a wrong expected value is a failure with a reason, a prompt-only case a skip with a reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-kat-'));
  try {
    const kg = JSON.parse(readFileSync(join(KAT, FILES[0]!), 'utf8')) as { testGroups: { parameterSet: string; tests: Record<string, unknown>[] }[] };
    const g = kg.testGroups.find((x) => x.parameterSet === 'ML-KEM-768')!;
    const ek = g.tests[0]!.ek as string;
    g.tests[0]!.ek = (ek[0] === '0' ? '1' : '0') + ek.slice(1);   // wrong expected ek
    delete g.tests[1]!.dk;                                       // no expected dk
    const file = join(dir, 'tampered.json');
    writeFileSync(file, JSON.stringify(kg));
    const r = await runMlkemKat(tool, file, 'ml-kem-768');
    assert.equal(r.failed, 1);
    assert.match(r.failures[0]!.reason, /^ek: differs at byte 0/);
    assert.equal(r.skipped, 1);
    assert.match(r.skips[0]!.reason, /"dk"/);
    assert.equal(r.passed, r.total - 2);
    await assert.rejects(runMlkemKat(tool, file, 'ml-dsa-65'), /not an ML-KEM parameter set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const { alg, set, k, kem } of SETS) {
  const ekLen = 384 * k + 32;
  const dkLen = 768 * k + 96;

  test(`interop ${alg}: ${CASES} random cases vs @noble/post-quantum, both directions, byte for byte`, async () => {
    const rand = prng(alg);
    for (let i = 0; i < CASES; i++) {
      const c = `${alg} case ${i} (seed ${SEED})`;
      const seed = rand(64);
      const [ek, dk] = await tool.bytes('kem.keygen', set, seed.subarray(0, 32), seed.subarray(32));
      const nk = kem.keygen(seed);
      eqBytes(ek!, nk.publicKey, `${c}: ek`);
      eqBytes(dk!, nk.secretKey, `${c}: dk`);
      assert.equal(ek!.length, ekLen);
      assert.equal(dk!.length, dkLen);

      // Same m: same ciphertext and secret.
      const m = rand(32);
      const [ct, ss] = await tool.bytes('kem.encaps', set, ek!, m);
      const ne = kem.encapsulate(nk.publicKey, m);
      eqBytes(ct!, ne.cipherText, `${c}: ct`);
      eqBytes(ss!, ne.sharedSecret, `${c}: ss`);

      // C decapsulates noble's ciphertext (of another m), noble decapsulates C's.
      const ne2 = kem.encapsulate(nk.publicKey, rand(32));
      const [ssC2] = await tool.bytes('kem.decaps', set, dk!, ne2.cipherText);
      eqBytes(ssC2!, ne2.sharedSecret, `${c}: C decaps of noble ct`);
      eqBytes(kem.decapsulate(ct!, nk.secretKey), ss!, `${c}: noble decaps of C ct`);
      const [ssC] = await tool.bytes('kem.decaps', set, dk!, ct!);
      eqBytes(ssC!, ss!, `${c}: C decaps of C ct`);

      // One flipped ciphertext bit: both return the same implicit-rejection secret J(z || c'), not K.
      const bad = ct!.slice();
      const pos = (rand(2)[0]! | (rand(2)[0]! << 8)) % (bad.length * 8);
      bad[pos >> 3] ^= 1 << (pos & 7);
      const [rejC] = await tool.bytes('kem.decaps', set, dk!, bad);
      const rejN = kem.decapsulate(bad, nk.secretKey);
      eqBytes(rejC!, rejN, `${c}: implicit rejection, bit ${pos}`);
      assert.notEqual(hex(rejC!), hex(ss!), `${c}: rejection secret differs from K`);
      const z = seed.subarray(32);
      const jbar = createHash('shake256', { outputLength: 32 }).update(z).update(bad).digest();
      eqBytes(rejC!, jbar, `${c}: rejection secret is J(z || c')`);

      // Key checks agree on good keys.
      assert.deepEqual(await tool.call('kem.check_ek', set, ek!), ['1']);
      assert.deepEqual(await tool.call('kem.check_dk', set, dk!), ['1']);
    }
  });

  test(`interop ${alg}: malformed inputs are rejected by C (E_INPUT) and by noble (throws)`, async () => {
    const rand = prng(`${alg}-bad`);
    const seed = rand(64);
    const [ek, dk] = await tool.bytes('kem.keygen', set, seed.subarray(0, 32), seed.subarray(32));
    const nk = kem.keygen(seed);
    const m = rand(32);
    const [ct] = await tool.bytes('kem.encaps', set, ek!, m);

    const lengths = (n: number): Uint8Array[] => [new Uint8Array(0), new Uint8Array(n - 1), new Uint8Array(n + 1), new Uint8Array(n + 32)];
    // Wrong-length ek / dk / ct / m / seeds. noble checks every length and throws.
    for (const e of lengths(ekLen)) {
      await assert.rejects(tool.call('kem.encaps', set, e, m), isInput, `encaps ek of ${e.length} B`);
      await assert.rejects(tool.call('kem.check_ek', set, e), isInput, `check_ek of ${e.length} B`);
      assert.throws(() => kem.encapsulate(e, m), /publicKey/, `noble encapsulate with ek of ${e.length} B`);
    }
    for (const e of lengths(dkLen)) {
      await assert.rejects(tool.call('kem.decaps', set, e, ct!), isInput, `decaps dk of ${e.length} B`);
      await assert.rejects(tool.call('kem.check_dk', set, e), isInput, `check_dk of ${e.length} B`);
      assert.throws(() => kem.decapsulate(ct!, e), /secretKey/, `noble decapsulate with dk of ${e.length} B`);
    }
    for (const e of lengths(ct!.length)) {
      await assert.rejects(tool.call('kem.decaps', set, dk!, e), isInput, `decaps ct of ${e.length} B`);
      assert.throws(() => kem.decapsulate(e, nk.secretKey), /cipherText/, `noble decapsulate with ct of ${e.length} B`);
    }
    await assert.rejects(tool.call('kem.encaps', set, ek!, rand(31)), isInput, 'm of 31 B');
    await assert.rejects(tool.call('kem.keygen', set, rand(32), rand(33)), isInput, 'z of 33 B');
    await assert.rejects(tool.call('kem.keygen', set, 'zz', rand(32)), isInput, 'non-hex d');
    await assert.rejects(tool.call('kem.keygen', '999', rand(32), rand(32)), (e: unknown) => e instanceof PqcToolError && e.code === 'E_PARAM');
    await assert.rejects(tool.call('kem.keygen', set, rand(32)), (e: unknown) => e instanceof PqcToolError && e.code === 'E_ARGS');

    // ek with one coefficient >= q: the modulus check fails on C and on noble. q - 1 is still fine.
    for (let t = 0; t < 8; t++) {
      const idx = (rand(2)[0]! | (rand(2)[0]! << 8)) % (256 * k);   // coefficient index in t-hat
      const value = t === 0 ? Q : t === 1 ? 4095 : Q + ((rand(2)[0]! | (rand(2)[0]! << 8)) % (4096 - Q));
      const setCoef = (v: number): Uint8Array => {
        const e = ek!.slice();
        const b = 3 * (idx >> 1);
        if (idx & 1) { e[b + 1] = (e[b + 1]! & 0x0f) | ((v & 0x0f) << 4); e[b + 2] = v >> 4; }
        else { e[b] = v & 0xff; e[b + 1] = (e[b + 1]! & 0xf0) | (v >> 8); }
        return e;
      };
      const bad = setCoef(value);
      const what = `coefficient ${idx} = ${value}`;
      assert.deepEqual(await tool.call('kem.check_ek', set, bad), ['0'], what);
      await assert.rejects(tool.call('kem.encaps', set, bad, m), isInput, what);
      assert.throws(() => kem.encapsulate(bad, m), /modulus/, `noble: ${what}`);
      const edge = setCoef(Q - 1);
      assert.deepEqual(await tool.call('kem.check_ek', set, edge), ['1'], `coefficient ${idx} = q - 1`);
      const [ctE, ssE] = await tool.bytes('kem.encaps', set, edge, m);
      const neE = kem.encapsulate(edge, m);
      eqBytes(ctE!, neE.cipherText, `q - 1 at ${idx}: ct`);
      eqBytes(ssE!, neE.sharedSecret, `q - 1 at ${idx}: ss`);
    }

    // dk with a corrupted H(ek), or a corrupted ek inside it: the hash check fails on C and on noble.
    const hOff = 768 * k + 32;
    for (const [off, what] of [[hOff, 'H(ek) first byte'], [hOff + 31, 'H(ek) last byte'], [384 * k + 5, 'ek inside dk']] as const) {
      const bad = dk!.slice();
      bad[off] ^= 0x01;
      assert.deepEqual(await tool.call('kem.check_dk', set, bad), ['0'], what);
      await assert.rejects(tool.call('kem.decaps', set, bad, ct!), isInput, what);
      assert.throws(() => kem.decapsulate(ct!, bad), /hash check/, `noble: ${what}`);
    }
    // A corrupted z or s is not detectable by the checks (FIPS 203 §7.3 checks only H(ek)): both still agree.
    const badZ = dk!.slice();
    badZ[dkLen - 1] ^= 0x80;
    assert.deepEqual(await tool.call('kem.check_dk', set, badZ), ['1']);
    const flipped = ct!.slice();
    flipped[0] ^= 1;
    eqBytes((await tool.bytes('kem.decaps', set, badZ, flipped))[0]!, kem.decapsulate(flipped, badZ), 'rejection with modified z');
  });
}
