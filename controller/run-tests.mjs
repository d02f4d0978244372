// Runs the compiled test files with Node's test runner. Under CI=true a skipped test is a failure:
// every service the tests need is installed by .ci/run, so a skip there means a check silently did not run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'dist', 'controller', 'test');
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => !only.length || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(dir, f));
if (!files.length) {
  console.error('run-tests: no test files found (did the TypeScript build run?)');
  process.exit(1);
}
const outDir = join(root, 'reports', 'out', 'tests');
mkdirSync(outDir, { recursive: true });
const tap = join(outDir, 'results.tap');
const r = spawnSync(process.execPath, [
  '--test', '--test-concurrency=1', '--test-timeout=300000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
], { stdio: 'inherit', cwd: root, env: { ...process.env, QSLAB_TEST_ARTIFACTS: outDir } });

const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
const pass = count('pass'), fail = count('fail'), skipped = count('skipped'), todo = count('todo');
let code = r.status ?? 1;
if (process.env.CI === 'true' && (skipped > 0 || todo > 0)) {
  const names = text.split('\n').filter((l) => /# SKIP|# TODO/.test(l)).map((l) => `  ${l.trim()}`);
  console.error(`run-tests: ${skipped + todo} test(s) skipped under CI=true; every test is required in CI:\n${names.join('\n')}`);
  code = code || 1;
}
console.log(`tests: ${pass} passed, ${fail} failed, ${skipped} skipped`);
process.exit(code);
