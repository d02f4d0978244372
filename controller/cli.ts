#!/usr/bin/env node
// qslab command line. Exit codes: 0 ok, 1 the work ran but something failed (cells, unhealthy nodes),
// 2 bad input (rig/campaign file, arguments), 3 internal/environment error, 130/143 interrupted.
import { Command, Option } from 'commander';
import { relative } from 'node:path';
import { ConfigError } from './config/load.js';
import { loadRig, wifiPassProblem, type Rig, type RigNode } from './config/rig.js';
import { LinkError, type NetStatus } from './drivers/node.js';
import { loadCampaign } from './config/campaign.js';
import { cleanup, installSignalHandlers } from './cleanup.js';
import { DEFAULT_CAMPAIGN, DEFAULT_RIG, REPORTS_DIR, resolveUserPath, controllerVersion, ROOT } from './paths.js';
import { openStore } from './store/sqlite.js';
import { influxConfigFrom, InfluxSink, pushSpool, defaultSpoolDir } from './store/influx-config.js';
import { runCampaign, type Sink } from './campaign/runner.js';
import { writeReport, type WrittenReport } from './report/report.js';
import { writeCompare } from './report/compare.js';
import { DEFAULT_CLAIMS } from './report/claims.js';
import { bringUpAll, openLink, shutDown } from './rig/strategy.js';
import { resolve, join, basename } from 'node:path';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { PQC_ALGS, readAcvp, type KatResult, type PqcAlg } from './pqc/kat.js';
import { PqcTool } from './pqc/tool.js';
import { runMlkemKat } from './pqc/kat-mlkem.js';
import { runMldsaKat } from './pqc/kat-mldsa.js';
import { benchNode, formatBenchTable, opsOf, type BenchRow } from './pqc/bench-node.js';
import { registerKmeCommands } from './kme/cli.js';
import { registerQkdCommands } from './qkd/cli.js';
import { registerNetCommands } from './net/cli.js';
import { startupClear, ShapeRefused } from './net/state.js';
import { NetNameError } from './net/exec.js';
import { flashRig, formatFlashTable } from './flash/flasher.js';
import { readVirtualImage, type VirtualImage } from './flash/image.js';
import { looksLikeEspImage, readEspImage, type EspAppImage } from './flash/esptool.js';
import { NODE_IMAGE, flashDir } from './paths.js';

export const EXIT = { ok: 0, failed: 1, input: 2, internal: 3, sigint: 130, sigterm: 143 } as const;

class UsageError extends Error {}

function dbPath(opt: string | undefined, rig?: Rig): string {
  const p = opt ?? process.env.QSLAB_DB ?? rig?.storage.sqlite ?? '.qslab/qslab.db';
  return resolve(ROOT, p);
}

function show(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

function out(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

const program = new Command();
program
  .name('qslab')
  .description('Hardware-in-the-loop testbed controller for quantum-safe IoT cryptography')
  .version(controllerVersion())
  .showHelpAfterError('(run with --help for usage)');

program
  .command('run')
  .description('run a campaign on a rig and write its report (default: the quickstart campaign on the virtual rig)')
  .argument('[campaign]', 'campaign file', DEFAULT_CAMPAIGN)
  .option('--rig <file>', 'rig file (default: the campaign\'s rig, else rigs/virtual.yaml)')
  .option('--db <file>', 'local store (SQLite); default: the rig\'s storage.sqlite')
  .option('--no-report', 'do not write the report at the end')
  .option('--json', 'print the run summary as JSON on stdout')
  .option('-q, --quiet', 'no progress output')
  .action(async (campaignArg: string, opts: { rig?: string; db?: string; report: boolean; json?: boolean; quiet?: boolean }) => {
    // Shaping left behind by a controller that was SIGKILLed (namespaces, veths, qdiscs, nft tables) goes first.
    if (process.getuid?.() === 0) {
      try {
        const r = await startupClear();
        const n = r.undone.length + r.swept.length;
        if (n && !opts.quiet) process.stderr.write(`net: removed ${n} leftover shaping objects of an earlier run\n`);
      } catch (e) {
        process.stderr.write(`net: could not check for leftover shaping: ${(e as Error).message}\n`);
      }
    }
    const campaign = loadCampaign(resolveUserPath(campaignArg));
    const rigFile = resolveUserPath(opts.rig ?? campaign.value.rig ?? DEFAULT_RIG);
    const rig = loadRig(rigFile);
    const store = openStore(dbPath(opts.db, rig.value));
    const sinks: Sink[] = [];
    const influxCfg = influxConfigFrom(rig.value, process.env);
    const influx = influxCfg ? new InfluxSink(influxCfg) : undefined;
    if (influx) sinks.push(influx);
    const ac = new AbortController();
    const uninstall = installSignalHandlers(ac);
    let code: number = EXIT.ok;
    try {
      const summary = await runCampaign({ campaign, rig, store, sinks, signal: ac.signal, quiet: !!opts.quiet || !!opts.json });
      let influxResult: Awaited<ReturnType<InfluxSink['close']>> | undefined;
      if (influx) influxResult = await influx.close();
      const report = opts.report ? await writeReport(store, summary.runId, REPORTS_DIR) : undefined;
      out(!!opts.json, { ...summary, influx: influxResult, report }, () => {
        const lines = [
          `run ${summary.runId}: ${summary.status} in ${summary.durationS.toFixed(1)} s`,
          `cells: ${summary.cells.ok} ok, ${summary.cells.failed} failed, ${summary.cells.skipped} skipped of ${summary.cells.total}`,
          `operations: ${summary.ops.ok} ok, ${summary.ops.failed} failed`,
          ...summary.failures.slice(0, 10).map((f) => `  failed ${f.cellId}: ${f.error}`),
          ...summary.checks.map((ch) => `check ${ch.ok ? 'passed' : 'FAILED'}: ${ch.name}: ${ch.detail}`),
        ];
        if (influxResult) lines.push(`influxdb: ${influxResult.written} points written, ${influxResult.spooledLines} spooled (replay with "qslab push")`);
        if (report) lines.push(...reportLines(report));
        return lines.join('\n');
      });
      code = summary.status === 'interrupted' ? (String(ac.signal.reason).includes('SIGTERM') ? EXIT.sigterm : EXIT.sigint)
        : summary.status === 'completed' && summary.ops.failed === 0 ? EXIT.ok : EXIT.failed;
    } finally {
      uninstall();
      store.close();
    }
    process.exitCode = code;
  });

const rigCmd = program.command('rig').description('rig files and the nodes they describe');
rigCmd
  .command('check')
  .description('open every node of the rig, print its hello and exit non-zero if any node is unhealthy')
  .argument('[rig]', 'rig file', DEFAULT_RIG)
  .option('--json', 'JSON output')
  .action(async (rigArg: string, opts: { json?: boolean }) => {
    const rig = loadRig(resolveUserPath(rigArg));
    const { ready, failed } = await bringUpAll(rig.value);
    try {
      const rows = [
        ...ready.map((n) => {
          const h = n.hello;
          return { node: n.spec.name, kind: n.spec.kind, path: n.link.opts.path, healthy: true, proto: h.proto, fw: h.fw, build: h.build, board: h.board, cpu_mhz: h.cpu_mhz, ram: h.ram, suites: h.suites };
        }),
        ...failed.map((f) => ({ node: f.spec.name, kind: f.spec.kind, healthy: false, error: f.error })),
      ];
      out(!!opts.json, { rig: rig.value.name, file: rig.file, nodes: rows }, () =>
        [`rig ${rig.value.name} (${show(rig.file)})`, ...rows.map((r) => ('error' in r
          ? `  ✗ ${r.node.padEnd(12)} ${r.error}`
          : `  ✓ ${r.node.padEnd(12)} ${r.board} ${r.cpu_mhz} MHz ${r.ram} B RAM  fw ${r.fw} build ${r.build}  proto ${r.proto}  ${r.path}`))].join('\n'));
      process.exitCode = failed.length ? EXIT.failed : EXIT.ok;
    } finally {
      await shutDown(ready);
    }
  });

program
  .command('report')
  .description('write the lab report of a run (default: the latest): HTML + PDF + Markdown + CSV, the seed paper\'s tables and figures measured')
  .argument('[run]', 'run id or "latest"', 'latest')
  .option('--db <file>', 'local store (SQLite)')
  .option('--out <dir>', 'output root', REPORTS_DIR)
  .option('--compare <runs...>', 'compare two runs instead (A B): Mann-Whitney U per figure metric, Holm-adjusted')
  .option('--pdf <mode>', 'auto (when Chromium is installed), never, or require', 'auto')
  .option('--claims <file>', `claims to judge the run against (default ${DEFAULT_CLAIMS})`)
  .option('--json', 'print the written paths as JSON')
  .addHelpText('after', `
The report (reports/out/<run>/): report.html (self-contained: inline SVG figures, no network access), report.pdf
(headless Chromium; --pdf never skips it), report.md with figures/*.svg, summary.csv, energy.csv, and one CSV per
paper table (table1.csv .. table4.csv, headline.csv). Every claim of fixtures/paper-claims.yaml is marked
reproduced / not reproduced / not measured with the reason; numbers carry n and spread.
--compare A B writes reports/out/compare-A-vs-B/ (HTML, Markdown, CSV).
Exit status: 0 written, 1 failed (e.g. --pdf require without Chromium), 2 bad input.`)
  .action(async (runArg: string, opts: { db?: string; out: string; compare?: string[]; pdf: string; claims?: string; json?: boolean }) => {
    if (!['auto', 'never', 'require'].includes(opts.pdf)) throw new UsageError(`--pdf: "${opts.pdf}" is not auto, never or require`);
    const store = openStore(dbPath(opts.db));
    try {
      const find = (id: string) => {
        const run = id === 'latest' ? store.latestRun() : store.getRun(id);
        if (!run) throw new UsageError(id === 'latest' ? 'the store has no runs yet: run "qslab run" first' : `no run "${id}" in ${dbPath(opts.db)} (see "qslab runs")`);
        return run.id;
      };
      if (opts.compare) {
        if (opts.compare.length !== 2) throw new UsageError(`--compare takes two run ids (A B), got ${opts.compare.length}`);
        const c = writeCompare(store, find(opts.compare[0]!), find(opts.compare[1]!), resolve(opts.out));
        out(!!opts.json, c, () => `comparison: ${c.rows} rows, ${c.significant} significant (Holm, α = 0.05)\n  ${show(c.html)}\n  ${show(c.markdown)}\n  ${show(c.csv)}`);
        return;
      }
      const r = await writeReport(store, find(runArg), resolve(opts.out), { pdf: opts.pdf as 'auto' | 'never' | 'require', ...(opts.claims ? { claimsFile: resolveUserPath(opts.claims) } : {}) });
      out(!!opts.json, r, () => reportLines(r).join('\n'));
    } finally {
      store.close();
    }
  });

function reportLines(r: WrittenReport): string[] {
  const c = r.claims;
  return [`report: ${show(r.html)}`, `        ${show(r.markdown)}`, r.pdf ? `        ${show(r.pdf)}` : `        (${r.pdfNote ?? 'no PDF'})`,
    `paper claims: ${c.reproduced ?? 0} reproduced, ${c['not reproduced'] ?? 0} not reproduced, ${c['not measured'] ?? 0} not measured (tables: ${show(r.dir)}/table1..4.csv)`];
}

program
  .command('runs')
  .description('list the runs in the local store')
  .option('--db <file>', 'local store (SQLite)')
  .option('--json', 'JSON output')
  .action((opts: { db?: string; json?: boolean }) => {
    const store = openStore(dbPath(opts.db));
    try {
      const runs = store.listRuns().map(({ campaignText: _c, rigText: _r, ...rest }) => rest);
      out(!!opts.json, runs, () => (runs.length ? runs.map((r) => `${r.id}  ${r.status.padEnd(11)} ${r.campaign} on ${r.rig}${r.virtual ? ' (virtual)' : ''}`).join('\n') : 'no runs yet'));
    } finally {
      store.close();
    }
  });

program
  .command('push')
  .description('replay InfluxDB batches spooled during an outage')
  .option('--rig <file>', 'rig file with storage.influx', DEFAULT_RIG)
  .addOption(new Option('--spool <dir>', 'spool directory').default(defaultSpoolDir()))
  .option('--json', 'JSON output')
  .action(async (opts: { rig: string; spool: string; json?: boolean }) => {
    const rig = loadRig(resolveUserPath(opts.rig));
    const cfg = influxConfigFrom(rig.value, process.env, opts.spool);
    if (!cfg) throw new UsageError('no InfluxDB configured: set QSLAB_INFLUX_URL (and QSLAB_INFLUX_BUCKET, QSLAB_INFLUX_ORG, QSLAB_INFLUX_TOKEN) or storage.influx in the rig file');
    const r = await pushSpool(cfg);
    out(!!opts.json, r, () => `pushed ${r.lines} lines from ${r.files} spool files; ${r.failed} files still failing`);
    process.exitCode = r.failed ? EXIT.failed : EXIT.ok;
  });

const KAT_DIR = join(ROOT, 'fixtures', 'kat');

function pqcAlgs(arg: string): PqcAlg[] {
  if (arg === 'all') return [...PQC_ALGS];
  const algs = arg.split(',').map((a) => a.trim().toLowerCase());
  const bad = algs.filter((a) => !(PQC_ALGS as readonly string[]).includes(a));
  if (bad.length) throw new UsageError(`--alg: unknown ${bad.join(', ')}; use ${PQC_ALGS.join(', ')} or all`);
  return algs as PqcAlg[];
}

const pqcCmd = program.command('pqc').description('the firmware\'s own ML-KEM / ML-DSA');
pqcCmd
  .command('kat')
  .description('run ACVP known-answer vectors through the firmware C implementation (host build of the same sources)')
  .requiredOption('--alg <alg>', `${PQC_ALGS.join(' | ')} | all (comma-separated list allowed)`)
  .option('--vectors <files...>', 'ACVP JSON files (default: the shipped fixtures/kat files of the algorithm)')
  .option('--json', 'JSON output')
  .action(async (opts: { alg: string; vectors?: string[]; json?: boolean }) => {
    const algs = pqcAlgs(opts.alg);
    const shipped = readdirSync(KAT_DIR).filter((f) => f.endsWith('.json')).map((f) => join(KAT_DIR, f));
    const tool = new PqcTool().start();
    const results: KatResult[] = [];
    try {
      for (const alg of algs) {
        const family = alg.startsWith('ml-kem') ? 'ML-KEM' : 'ML-DSA';
        const files = opts.vectors ? opts.vectors.map((f) => resolveUserPath(f)) : shipped.filter((f) => basename(f).startsWith(family));
        for (const file of files) {
          const acvp = readAcvp(file);
          if (acvp.algorithm !== family) {
            if (opts.vectors) throw new UsageError(`${file}: an ${acvp.algorithm} file, but --alg ${alg} is ${family}`);
            continue;
          }
          results.push(family === 'ML-KEM' ? await runMlkemKat(tool, file, alg) : await runMldsaKat(tool, file, alg));
        }
      }
    } finally {
      await tool.stop();
    }
    const failed = results.reduce((a, r) => a + r.failed, 0);
    out(!!opts.json, { results, failed }, () => {
      const rows = results.map((r) => `${r.alg.padEnd(12)} ${r.mode.padEnd(11)} ${String(r.passed).padStart(5)} passed ${String(r.failed).padStart(4)} failed ${String(r.skipped).padStart(4)} skipped  ${show(r.file)}` +
        r.failures.slice(0, 5).map((f) => `\n    tgId ${f.tgId} tcId ${f.tcId}: ${f.reason}`).join('') +
        r.skips.map((k) => `\n    skipped ${k.count}: ${k.reason}`).join(''));
      return [...rows, `total: ${results.reduce((a, r) => a + r.passed, 0)} passed, ${failed} failed`].join('\n');
    });
    process.exitCode = failed ? EXIT.failed : EXIT.ok;
  });

const benchCmd = program.command('bench').description('microbenchmarks on a node');
benchCmd
  .command('node')
  .description('pqm4-style microbenchmark of ML-KEM / ML-DSA on a node, over the protocol (cycles, µs, stack, heap)')
  .requiredOption('--alg <alg>', `${PQC_ALGS.join(' | ')} | all (comma-separated list allowed)`)
  .option('--op <op>', 'one operation (keygen, encaps, decaps, sign, verify); default: all of the algorithm')
  .option('--n <n>', 'iterations per operation', '100')
  .option('--rig <file>', 'rig file', DEFAULT_RIG)
  .option('--node <name>', 'node of the rig (default: the first)')
  .option('--json', 'JSON output (raw per-iteration figures included)')
  .action(async (opts: { alg: string; op?: string; n: string; rig: string; node?: string; json?: boolean }) => {
    const algs = pqcAlgs(opts.alg);
    const n = Number(opts.n);
    if (!Number.isInteger(n) || n < 1 || n > 100000) throw new UsageError('--n: an integer 1..100000');
    const rig = loadRig(resolveUserPath(opts.rig));
    const name = opts.node ?? rig.value.nodes[0]!.name;
    if (!rig.value.nodes.some((x) => x.name === name)) throw new UsageError(`--node: no node "${name}" in ${rig.file}`);
    const { ready, failed } = await bringUpAll(rig.value, [name]);
    try {
      if (!ready[0]) throw new Error(`node ${name} is not ready: ${failed[0]?.error ?? 'unknown'}`);
      const node = ready[0];
      const rows: BenchRow[] = [];
      for (const alg of algs) {
        const ops = opts.op ? [opts.op] : opsOf(alg);
        for (const op of ops) {
          if (!opsOf(alg).includes(op)) throw new UsageError(`--op ${op} is not an operation of ${alg} (${opsOf(alg).join(', ')})`);
          if (!opts.json) process.stderr.write(`bench ${alg} ${op} × ${n} on ${name}\n`);
          rows.push(await benchNode(node.link, alg, op, n));
        }
      }
      const meta = { node: name, board: node.hello.board, build: node.hello.build, fw: node.hello.fw, virtual: !!node.virtual };
      out(!!opts.json, { ...meta, rows }, () => `node ${name} (${meta.board}, fw ${meta.fw} build ${meta.build}${meta.virtual ? ', VIRTUAL: host CPU' : ''})\n${formatBenchTable(rows)}`);
      process.exitCode = rows.some((r) => r.failed) ? EXIT.failed : EXIT.ok;
    } finally {
      await shutDown(ready);
    }
  });

program
  .command('flash')
  .description('write a firmware image to the rig\'s nodes and check that they boot it (hello reports its build hash)')
  .option('--rig <file>', 'rig file', DEFAULT_RIG)
  .option('--node <names...>', 'only these nodes (default: all)')
  .option('--image <file>', 'firmware image: .qsimg for virtual nodes (controller/flash/image.ts), ESP-IDF app .bin for serial ESP32 nodes (controller/flash/esptool.ts)', NODE_IMAGE)
  .option('--reset <mode>', 'serial ESP32 nodes: auto (DTR/RTS reset into the ROM bootloader) or none (board already in download mode)', 'auto')
  .option('--baud <rate>', 'serial ESP32 nodes: line rate while writing (CHANGE_BAUDRATE after sync)', '460800')
  .option('--force', 'flash even when a node already reports the image\'s build hash')
  .option('--flash-dir <dir>', 'root of the virtual nodes\' flash files (<dir>/<rig>/<node>.bin; default $QSLAB_FLASH_DIR or .qslab/flash)')
  .option('--json', 'JSON output')
  .addHelpText('after', `
Virtual nodes are flashed through the emulated ESP32 ROM bootloader on their serial port (921600 baud): sync,
chip detection, write at 0x10000, MD5 check, reboot. Their flash files persist under .qslab/flash/<rig>/<node>.bin
(created on first use with the current build); a virtual node whose flash file exists boots from it, also in
"qslab run" and "qslab rig check". A node already running the image's build is skipped unless --force.
Serial ESP32/ESP32-S3 nodes are flashed on their port: DTR/RTS auto-reset into the ROM bootloader (--reset none:
hold BOOT and tap EN yourself), sync, chip check, write of the ESP-IDF app .bin at 0x10000 (--baud), MD5 check,
reboot, then hello; skipped when the image's esp_app_desc_t.version (the qslab build hash) matches hello's build.
Serial Raspberry Pi nodes (deploy: {method: rpi-ssh, host, user, device} in the rig): this tree's firmware sources
go to the Pi over ssh (host key checked, key login), are built there with make, installed under deploy.dir and
(re)started as the qslab-node service (systemd, or service: supervise) on deploy.device; then hello is read on the
node's port. Skipped when hello already reports the hash of these sources (make -s -C firmware print-hash);
--image does not apply to them.
Exit status: 0 every node flashed or skipped, 1 a node failed, 2 bad input.`)
  .action(async (opts: { rig: string; node?: string[]; image: string; reset: string; baud: string; force?: boolean; flashDir?: string; json?: boolean }) => {
    const rig = loadRig(resolveUserPath(opts.rig));
    const known = rig.value.nodes.map((n) => n.name);
    const unknown = (opts.node ?? []).filter((n) => !known.includes(n));
    if (unknown.length) throw new UsageError(`--node: no node ${unknown.map((n) => `"${n}"`).join(', ')} in ${rig.file} (nodes: ${known.join(', ')})`);
    if (opts.reset !== 'auto' && opts.reset !== 'none') throw new UsageError(`--reset: "${opts.reset}" is not auto or none`);
    const baud = Number(opts.baud);
    if (!Number.isInteger(baud) || baud < 9600 || baud > 4_000_000) throw new UsageError(`--baud: "${opts.baud}" is not a baud rate (9600..4000000)`);
    let image: VirtualImage | EspAppImage;
    try {
      const file = resolveUserPath(opts.image);
      const head = Buffer.alloc(1);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, head, 0, 1, 0);
      } finally {
        closeSync(fd);
      }
      image = looksLikeEspImage(head) ? readEspImage(file) : readVirtualImage(file);
    } catch (e) {
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${opts.image} does not exist (run "npm run build:firmware")` : (e as Error).message;
      throw new UsageError(`--image: ${msg}`);
    }
    const dir = opts.flashDir ? resolve(opts.flashDir) : flashDir();
    const esptool = { reset: opts.reset as 'auto' | 'none', baud, onNote: (m: string) => console.error(`note: ${m}`) };
    const rows = await flashRig({ rig: rig.value, nodes: opts.node, image, force: !!opts.force, flashDir: dir, esptool });
    out(!!opts.json, { rig: rig.value.name, image: { file: resolveUserPath(opts.image), build: image.hash, bytes: image.bytes.length }, flashDir: dir, nodes: rows }, () =>
      [`flash build ${image.hash ?? '(no build hash in image)'} (${show(resolveUserPath(opts.image))}, ${image.bytes.length} bytes) to rig ${rig.value.name}`, formatFlashTable(rows)].join('\n'));
    process.exitCode = rows.some((r) => r.result === 'failed') ? EXIT.failed : EXIT.ok;
  });

// ---- provision: Wi-Fi station credentials (firmware/PROTOCOL.md §4 "net") ------------------------------------------
interface ProvisionRow {
  node: string;
  kind: string;
  board: string;
  result: 'provisioned' | 'not applicable' | 'skipped' | 'failed';
  /** One line for people (never contains the password). */
  message: string;
  ssid?: string;
  /** The environment variable the password was read from. */
  passwordEnv?: string;
  /** The node's answer: its station status after the change (or the host network, for a POSIX node). */
  net?: Omit<NetStatus, 'text'>;
  error?: string;
}

const NOT_APPLICABLE = 'not applicable (host network)';

async function provisionNode(spec: RigNode, pass: string | undefined, waitS: number): Promise<ProvisionRow> {
  const base = { node: spec.name, kind: spec.kind, board: spec.board };
  if (spec.kind !== 'serial') return { ...base, result: 'skipped', message: 'skipped: virtual node (uses the host\'s network)' };
  const wifi = spec.wifi;
  if (!wifi || pass === undefined) return { ...base, result: 'skipped', message: 'skipped: no wifi: for this node in the rig file' };
  const about = { ssid: wifi.ssid, ...(wifi.password_env ? { passwordEnv: wifi.password_env } : {}) };
  let link: Awaited<ReturnType<typeof openLink>>['link'] | undefined;
  const netOf = (st: NetStatus) => ({ status: st.status, ...(st.ip ? { ip: st.ip } : {}), ...(st.ssid ? { ssid: st.ssid } : {}) });
  try {
    ({ link } = await openLink(spec, spec.port));
    let st = await link.netConfig(wifi.ssid, pass);
    const deadline = performance.now() + waitS * 1000;
    while (waitS > 0 && st.status !== 'connected' && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      st = await link.netStatus();
    }
    const shown = `${st.text}${st.ssid ? ` (${st.ssid})` : ''}`;
    if (waitS > 0 && st.status !== 'connected') {
      return { ...base, ...about, result: 'failed', net: netOf(st), message: `failed: credentials stored, but not connected within ${waitS} s (${shown}): check the SSID, ${wifi.password_env ? `the password in $${wifi.password_env}` : 'that the network is open'} and the signal`, error: `not connected within ${waitS} s (${shown})` };
    }
    return { ...base, ...about, result: 'provisioned', net: netOf(st), message: `provisioned: ${shown}` };
  } catch (e) {
    const err = e as Error;
    if (e instanceof LinkError && e.code === 'E_NOTSUP') {
      // A POSIX node (Raspberry Pi, or a virtual node behind a serial line): Wi-Fi is the OS's business.
      const host = link ? await link.netStatus().catch(() => undefined) : undefined;
      return { ...base, ...about, result: 'not applicable', ...(host ? { net: netOf(host) } : {}), message: `${NOT_APPLICABLE}: ${err.message.replace(/^E_NOTSUP: /, '')}${host?.ip ? ` (the node uses ${host.ip})` : ''}` };
    }
    const why = e instanceof LinkError && e.code === 'E_CMD' ? 'the node\'s firmware has no net command: flash a current build first ("qslab flash")' : err.message;
    return { ...base, ...about, result: 'failed', message: `failed: ${why}`, error: why };
  } finally {
    await link?.close();
  }
}

program
  .command('provision')
  .description('hand Wi-Fi station credentials to the rig\'s serial nodes (SSID from the rig file, password from the environment)')
  .option('--rig <file>', 'rig file', DEFAULT_RIG)
  .option('--node <names...>', 'only these nodes (default: all)')
  .option('--wait <seconds>', 'then wait up to this long for each provisioned node to report "connected" (0: do not wait)', '0')
  .option('--json', 'JSON output')
  .addHelpText('after', `
Every selected serial node with a wifi: entry in the rig file, e.g.
  - { name: esp-a, kind: serial, board: esp32, port: /dev/serial/by-id/..., wifi: { ssid: lab-iot, password_env: QSLAB_WIFI_PASS } }
gets the protocol's net command (firmware/PROTOCOL.md §4) on its serial port: the SSID from the rig file, the
password from the environment variable password_env names (default QSLAB_WIFI_PASS; wifi: { ssid: x, open: true }
for an open network). The password is never written in the rig file (rig files are stored with every run), never
printed, and never recorded by the link. An ESP32 node stores the pair in NVS and reconnects; its answer (normally
"connecting") is printed, or with --wait the state once it is connected. POSIX nodes (Raspberry Pi, virtual nodes)
use the host's network: reported "${NOT_APPLICABLE}", not a failure. Nodes without wifi: are skipped.
Exit status: 0 every node provisioned, not applicable or skipped, 1 a node failed, 2 bad input (rig file, --node,
the password variable unset or invalid).`)
  .action(async (opts: { rig: string; node?: string[]; wait: string; json?: boolean }) => {
    const rig = loadRig(resolveUserPath(opts.rig));
    const known = rig.value.nodes.map((n) => n.name);
    const unknown = (opts.node ?? []).filter((n) => !known.includes(n));
    if (unknown.length) throw new UsageError(`--node: no node ${unknown.map((n) => `"${n}"`).join(', ')} in ${rig.file} (nodes: ${known.join(', ')})`);
    const waitS = Number(opts.wait);
    if (!Number.isFinite(waitS) || waitS < 0 || waitS > 600) throw new UsageError(`--wait: "${opts.wait}" is not a number of seconds (0..600)`);
    const specs = rig.value.nodes.filter((n) => !opts.node?.length || opts.node.includes(n.name));
    // Every password comes from the environment and is checked before any node is opened.
    const passes = new Map<string, string>();
    const problems: string[] = [];
    for (const spec of specs) {
      if (spec.kind !== 'serial' || !spec.wifi) continue;
      const w = spec.wifi;
      if (w.open || !w.password_env) {
        passes.set(spec.name, '');
        continue;
      }
      const v = process.env[w.password_env];
      const fix = `export ${w.password_env}=<the password of "${w.ssid}"> in the shell that runs qslab (the password is read from the environment, never from the rig file; for an open network put open: true in the node's wifi:)`;
      if (v === undefined) problems.push(`node ${spec.name}: the Wi-Fi password variable ${w.password_env} is not set. Fix: ${fix}`);
      else if (v === '') problems.push(`node ${spec.name}: the Wi-Fi password variable ${w.password_env} is empty. Fix: ${fix}`);
      else {
        const p = wifiPassProblem(v);
        if (p) problems.push(`node ${spec.name}: ${w.password_env}: ${p}. Fix: set ${w.password_env} to the network's password`);
        else passes.set(spec.name, v);
      }
    }
    if (problems.length) throw new UsageError(problems.join('\n  '));
    const rows = await Promise.all(specs.map((s) => provisionNode(s, passes.get(s.name), waitS)));
    out(!!opts.json, { rig: rig.value.name, nodes: rows }, () =>
      [`provision rig ${rig.value.name}: Wi-Fi credentials from the environment`, ...rows.map((r) => `${r.node.padEnd(14)} ${r.message}`)].join('\n'));
    process.exitCode = rows.some((r) => r.result === 'failed') ? EXIT.failed : EXIT.ok;
  });

registerQkdCommands(program);
registerNetCommands(program);
registerKmeCommands(program);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`qslab: invalid ${e.message}\n`);
      process.exitCode = EXIT.input;
    } else if (e instanceof UsageError || e instanceof ShapeRefused || e instanceof NetNameError) {
      process.stderr.write(`qslab: ${e.message}\n`);
      process.exitCode = EXIT.input;
    } else {
      process.stderr.write(`qslab: ${(e as Error).message}\n`);
      if (process.env.QSLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = EXIT.internal;
    }
  } finally {
    await cleanup.run();
  }
}

// Last resort: a bug that escapes every handler must still undo what the run set up (ptys, emulators, relays,
// namespaces, tc/nft rules) before the process goes; the run's recorded data is already in the store.
const fatal = (e: unknown) => {
  process.stderr.write(`qslab: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  void cleanup.run().finally(() => process.exit(EXIT.internal));
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

await main();
