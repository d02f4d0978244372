// `qslab net apply|clear|status|probe`: kernel link shaping (tc/netem or tbf/htb, nftables loss) and its cleanup.
// Wired into controller/cli.ts by registerNetCommands(program).
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { NetExec, haveTool, showArgv, checkRun } from './exec.js';
import { NetState, clear, defaultStatePath, listNetns, listNftTables, listQdiscs, QDISC_HANDLE, OUR_LINK_RE, listLinks } from './state.js';
import { applyShaping, probe, type Direction, type RateShaper } from './tc.js';
import { loadProfiles, DEFAULT_PROFILES } from './profiles.js';
import { createNodeNet, destroyNodeNet, measureConnectRtt, measureTcpRtt, measureTcpThroughput } from './netns.js';

function printer(json: boolean | undefined) {
  return (argv: string[], dry: boolean) => {
    if (dry && !json) process.stdout.write(`${showArgv(argv)}\n`);
  };
}

export function registerNetCommands(program: Command): Command {
  const net = program.command('net').description('kernel link shaping for virtual nodes (tc/netem, tbf/htb, nftables) and its cleanup');

  net
    .command('apply')
    .description('shape an interface with a link profile (netem when the kernel has it, else tbf/htb rate + nftables loss)')
    .argument('<profile>', 'profile name from the profiles file')
    .requiredOption('--dev <iface>', 'interface to shape (must be in the rig file or made by qslab)')
    .option('--ns <netns>', 'namespace the interface lives in (a qslab-… namespace)')
    .option('--run <id>', 'run id owning the effect (names the nft table qslab_<id>)', 'cli')
    .addOption(new Option('--direction <dir>', 'which direction to shape').choices(['egress', 'ingress', 'both']).default('egress'))
    .addOption(new Option('--shaper <kind>', 'rate qdisc when netem is missing').choices(['tbf', 'htb']).default('tbf'))
    .option('--profiles <file>', 'profiles file', DEFAULT_PROFILES)
    .option('--rig-interface <iface...>', 'interfaces the rig file allows shaping')
    .option('--dry-run', 'print the exact commands instead of running them')
    .option('--force', 'allow shaping the default-route interface or one not named in the rig')
    .option('--json', 'print the plan as JSON')
    .action(async (name: string, o: { dev: string; ns?: string; run: string; direction: Direction; shaper: RateShaper; profiles: string; rigInterface?: string[]; dryRun?: boolean; force?: boolean; json?: boolean }) => {
      const profiles = loadProfiles(o.profiles);
      const profile = profiles.get(name);
      if (!profile) throw new Error(`unknown profile "${name}"; known: ${[...profiles.keys()].join(', ')}`);
      const x = new NetExec({ dryRun: !!o.dryRun, log: printer(o.json) });
      const caps = await probe();
      const plan = await applyShaping({
        profile, caps, run: checkRun(o.run), dev: o.dev, direction: o.direction, rateShaper: o.shaper, exec: x,
        force: !!o.force, ...(o.ns ? { ns: o.ns } : {}), ...(o.rigInterface ? { rigInterfaces: o.rigInterface } : {}),
      });
      if (o.json) process.stdout.write(`${JSON.stringify({ dryRun: !!o.dryRun, profile: name, ...plan }, null, 2)}\n`);
      else {
        process.stdout.write(`${o.dryRun ? 'would apply' : 'applied'} ${name} on ${o.ns ? `${o.ns}/` : ''}${o.dev} with ${plan.mode}${plan.nft ? ` + nft (${plan.nft.note})` : ''}\n`);
        if (plan.forRelay.length) process.stdout.write(`not possible in this kernel (use the relay): ${plan.forRelay.join(', ')}\n`);
      }
    });

  net
    .command('clear')
    .description('remove every namespace, veth, qdisc and nft table qslab made (state file + name prefixes)')
    .option('--dry-run', 'print the exact commands instead of running them')
    .option('--all', 'also remove what a running controller holds')
    .option('--json', 'print what was removed as JSON')
    .action(async (o: { dryRun?: boolean; all?: boolean; json?: boolean }) => {
      const x = new NetExec({ dryRun: !!o.dryRun, log: printer(o.json) });
      const r = await clear({ exec: x, includeLive: !!o.all });
      if (o.json) process.stdout.write(`${JSON.stringify({ dryRun: !!o.dryRun, ...r }, null, 2)}\n`);
      else process.stdout.write(`${o.dryRun ? 'would remove' : 'removed'} ${r.undone.length} recorded + ${r.swept.length} leftover object(s)${r.keptLive.length ? `; kept ${r.keptLive.length} of running controllers (--all to remove)` : ''}\n`);
    });

  net
    .command('status')
    .description('what qslab has applied: the state file and the live kernel objects with qslab names')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      const x = new NetExec();
      const st = new NetState();
      const namespaces = (await listNetns(x)).filter((n) => n.startsWith('qslab-'));
      const links = (await listLinks(x)).filter((l) => OUR_LINK_RE.test(l));
      const qdiscs: Record<string, string[]> = { '': (await listQdiscs(x)).filter((l) => l.includes(` ${QDISC_HANDLE} `) || / dev qs[0-9a-f]{10}[hni] /.test(l)) };
      const tables: Record<string, string[]> = { '': (await listNftTables(x)).filter((t) => t.name.startsWith('qslab_')).map((t) => `${t.family} ${t.name}`) };
      for (const ns of namespaces) {
        qdiscs[ns] = (await listQdiscs(x, ns)).filter((l) => !/^qdisc noqueue 0: dev lo /.test(l));
        tables[ns] = (await listNftTables(x, ns)).map((t) => `${t.family} ${t.name}`);
      }
      const value = { stateFile: defaultStatePath(), recorded: st.read(), live: { namespaces, links, qdiscs, nftTables: tables } };
      if (o.json) { process.stdout.write(`${JSON.stringify(value, null, 2)}\n`); return; }
      const lines = [`state file: ${value.stateFile}${existsSync(value.stateFile) ? '' : ' (none)'}`, `recorded: ${value.recorded.length}`];
      for (const e of value.recorded) lines.push(`  ${e.effect.kind} ${JSON.stringify(e.effect)} run=${e.run} pid=${e.pid}`);
      lines.push(`namespaces: ${namespaces.join(' ') || '-'}`, `links: ${links.join(' ') || '-'}`);
      for (const [ns, q] of Object.entries(qdiscs)) for (const l of q) lines.push(`  qdisc${ns ? ` [${ns}]` : ''}: ${l}`);
      for (const [ns, t] of Object.entries(tables)) for (const l of t) lines.push(`  nft${ns ? ` [${ns}]` : ''}: ${l}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  net
    .command('probe')
    .description('what the kernel can do (netem, tbf, htb, ifb, nftables, namespaces); optionally measure RTT/throughput')
    .option('--to <host:port>', 'measure TCP connect RTT to host:port (loopback or 10.213.0.0/16 only)')
    .option('--pair', 'make a scratch namespace + veth pair and measure RTT and TCP throughput across it')
    .option('--json', 'JSON output')
    .action(async (o: { to?: string; pair?: boolean; json?: boolean }) => {
      const caps = await probe();
      const tools = { ip: haveTool('ip'), tc: haveTool('tc'), nft: haveTool('nft') };
      const result: Record<string, unknown> = { root: process.getuid?.() === 0, tools, ...caps };
      if (o.to) {
        const m = /^(.+):(\d+)$/.exec(o.to);
        if (!m) throw new Error('--to wants host:port');
        result.to = { target: o.to, connectRtt: await measureConnectRtt(m[1]!.replace(/^\[|\]$/g, ''), Number(m[2])) };
      }
      if (o.pair) {
        const x = new NetExec();
        const st = new NetState();
        const n = await createNodeNet({ run: `probe${process.pid}`, index: 0, exec: x, state: st });
        try {
          const rtt = await measureTcpRtt({ ns: n.ns, nodeAddr: n.nodeAddr });
          const tp = await measureTcpThroughput({ ns: n.ns, hostAddr: n.hostAddr, seconds: 1, warmupS: 0.2 });
          result.pair = { ns: n.ns, hostIf: n.hostIf, rttMedianMs: rtt.medianMs, throughputKbit: Math.round(tp.kbit) };
        } finally {
          await destroyNodeNet(n, { exec: x, state: st });
        }
      }
      if (o.json) { process.stdout.write(`${JSON.stringify(result, null, 2)}\n`); return; }
      const yn = (b: unknown) => (b ? 'yes' : 'no');
      const lines = [
        `root: ${yn(result.root)}  ip: ${yn(tools.ip)}  tc: ${yn(tools.tc)}  nft: ${yn(tools.nft)}`,
        `netns: ${yn(caps.netns)}  netem: ${yn(caps.netem)}  tbf: ${yn(caps.tbf)}  htb: ${yn(caps.htb)}  ifb: ${yn(caps.ifb)}  u32: ${yn(caps.u32)}  nftables: ${yn(caps.nft)}`,
      ];
      for (const [k, v] of Object.entries(caps.errors)) lines.push(`  ${k}: ${v}`);
      if (result.to) lines.push(`connect RTT to ${o.to}: ${(result.to as { connectRtt: { medianMs: number } }).connectRtt.medianMs.toFixed(3)} ms (median)`);
      if (result.pair) { const p = result.pair as { rttMedianMs: number; throughputKbit: number }; lines.push(`veth pair: RTT ${p.rttMedianMs.toFixed(3)} ms (median), TCP ${(p.throughputKbit / 1000).toFixed(0)} Mbit/s`); }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  return net;
}
