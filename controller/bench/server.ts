// Loopback throughput of the QSHS/1 server: the server runs in this process, clients (node-crypto mode of
// client.ts) in separate worker processes, so server CPU per handshake is measured on its own.
//
//   node dist/controller/bench/server.js [--n 3000] [--conc 8] [--procs 2] [--records 0] [--bytes 256]
//                                           [--refresh 0] [--aead aes-256-gcm] [--suite all|<name>]

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runClient } from '../handshake/client.js';
import { generateServerKeys, HandshakeServer, type ServerOp } from '../handshake/server.js';
import { isAeadName, isSuiteName, SUITES, type AeadName, type SuiteName } from '../handshake/wire.js';

interface WorkerJob {
  host: string; port: number; suite: SuiteName; aead: AeadName; pin: string;
  n: number; conc: number; records: number; bytes: number; refresh: number;
}

async function worker(job: WorkerJob): Promise<{ ok: number; failed: number; errs: Record<string, number> }> {
  let left = job.n;
  let ok = 0;
  let failed = 0;
  const errs: Record<string, number> = {};
  const loop = async (): Promise<void> => {
    while (left > 0) {
      left--;
      const r = await runClient({ ...job, crypto: 'node' });
      if (r.ok) ok++;
      else {
        failed++;
        errs[`${r.err}: ${r.msg}`] = (errs[`${r.err}: ${r.msg}`] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: job.conc }, loop));
  return { ok, failed, errs };
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1]! : NaN;
};

async function main(): Promise<void> {
  const n = Number(arg('n', '3000'));
  const conc = Number(arg('conc', '8'));
  const procs = Number(arg('procs', '2'));
  const records = Number(arg('records', '0'));
  const bytes = Number(arg('bytes', '256'));
  const refresh = Number(arg('refresh', '0'));
  const aead = arg('aead', 'aes-256-gcm');
  const which = arg('suite', 'all');
  if (!isAeadName(aead)) throw new Error(`bad --aead ${aead}`);
  const suites = which === 'all' ? SUITES : isSuiteName(which) ? [which] : [];
  if (!suites.length) throw new Error(`bad --suite ${which}`);

  const server = new HandshakeServer({ keys: generateServerKeys() });
  const addr = await server.start();
  let ops: ServerOp[] = [];
  server.onOp((o) => ops.push(o));
  const self = fileURLToPath(import.meta.url);
  console.log(`QSHS/1 loopback: ${n} ops/suite, ${procs} client processes × ${Math.ceil(conc / procs)} concurrent, ` +
    `M=${records} B=${bytes} K=${refresh} ${aead}`);
  for (const suite of suites) {
    ops = [];
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const results = await Promise.all(Array.from({ length: procs }, (_, i) => new Promise<Awaited<ReturnType<typeof worker>>>(
      (resolve, reject) => {
        const job: WorkerJob = {
          ...addr, suite, aead, pin: server.pin(suite), records, bytes, refresh,
          n: Math.floor(n / procs) + (i < n % procs ? 1 : 0), conc: Math.ceil(conc / procs),
        };
        const child = fork(self, ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        child.once('message', (m) => resolve(m as Awaited<ReturnType<typeof worker>>));
        child.once('error', reject);
        child.send(job);
      })));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const okN = results.reduce((a, r) => a + r.ok, 0);
    const failN = results.reduce((a, r) => a + r.failed, 0);
    const good = ops.filter((o) => o.ok);
    console.log(
      `${suite.padEnd(17)} ${(okN / secs).toFixed(0).padStart(6)} ops/s  ok ${okN} failed ${failN}  ` +
      `server CPU ${((cpu.user + cpu.system) / Math.max(1, ops.length)).toFixed(0)} µs/op  ` +
      `server wall median ${median(good.map((o) => o.wallUs)).toFixed(0)} µs (hs ${median(good.map((o) => o.hsUs ?? NaN)).toFixed(0)} µs)`,
    );
    for (const r of results) for (const [e, c] of Object.entries(r.errs)) console.log(`  ${c} × ${e}`);
  }
  await server.close();
}

if (process.argv.includes('--worker')) {
  process.once('message', (job) => {
    void worker(job as WorkerJob).then((r) => {
      process.send!(r, () => process.exit(0));
    });
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
