// The power side of a bench (DESIGN §3, §4): opens the rig's Firmata boards, relays and meters, keeps each
// meter's recent samples, collects marker edges, and on the virtual rig starts the emulators that stand at the far
// end of those wires (virtual Firmata board, UM34C, PPK2, INA2xx) fed by a power model of each virtual node,
// driven by what the node's process really did (/proc CPU time and bytes written).
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Battery, Board, Rig, RigMeter, RigRelay } from '../config/rig.js';
import type { MeterDriver, SampleBatch } from '../drivers/meter.js';
import { hostNow } from '../drivers/meter.js';
import { UmMeterDriver } from '../drivers/meter-um34c.js';
import { Ppk2Driver } from '../drivers/meter-ppk2.js';
import { Ina2xxMeter } from '../drivers/meter-ina2xx.js';
import { FirmataBoard } from '../drivers/firmata.js';
import { RelayDriver, type RelayTransition } from '../drivers/relay.js';
import { UmEmulator } from '../virtual/um34c.js';
import { Ppk2Emulator } from '../virtual/ppk2.js';
import { VirtualFirmataBoard, VirtualIna } from '../virtual/firmata-board.js';
import type { VirtualNode } from '../virtual/node.js';
import { PowerModel, ProcActivity, type ActivitySource } from './model.js';
import { SampleRing } from './ring.js';

/** A virtual node's process activity across power cycles (each boot is a new process with fresh counters). */
export class NodeActivity implements ActivitySource {
  private proc?: ProcActivity;
  private cpuBase = 0;
  private txBase = 0;

  attach(pid: number): void {
    if (this.proc) {
      this.cpuBase += this.proc.cpuNs();
      this.txBase += this.proc.txBytes();
    }
    // the POSIX node's threads: qs-uart paces the serial line (a UART's job, no board CPU), qs-work runs the
    // workload and owns the data-plane sockets (its writes are what a radio would send)
    this.proc = new ProcActivity(pid, { excludeCpu: /^qs-uart$/, txThreads: /^qs-work$/ });
  }

  cpuNs(): number {
    return this.cpuBase + (this.proc?.cpuNs() ?? 0);
  }

  txBytes(): number {
    return this.txBase + (this.proc?.txBytes() ?? 0);
  }
}

/** Marker edges of one node (host ms), from a Firmata input or, on the virtual rig, the node's marker pipe. */
export class MarkerLog {
  readonly edges: { t: number; high: boolean }[] = [];

  add(high: boolean, t: number): void {
    this.edges.push({ t, high });
    if (this.edges.length > 200_000) this.edges.splice(0, 100_000);
  }

  /** [first rising edge, last falling edge] within [from, to], or undefined when there is no complete pulse. */
  span(from: number, to: number): [number, number] | undefined {
    const inside = this.edges.filter((e) => e.t >= from && e.t <= to);
    const rise = inside.find((e) => e.high);
    const fall = [...inside].reverse().find((e) => !e.high);
    return rise && fall && fall.t > rise.t ? [rise.t, fall.t] : undefined;
  }
}

export interface MeterSlot {
  rig: RigMeter;
  driver: MeterDriver;
  ring: SampleRing;
  /** Virtual rig: the model behind the emulator, for the ground truth. */
  model?: PowerModel;
}

export interface NodePower {
  node: string;
  board: Board;
  meter?: MeterSlot;
  relay?: { rig: RigRelay; driver: RelayDriver };
  /** Where the node's marker line is read: a PPK2 digital channel or a Firmata pin (edges in `markers`). */
  marker: { kind: 'meter'; channel: number } | { kind: 'firmata'; log: MarkerLog } | { kind: 'none' };
  battery?: Battery;
  /** Virtual rig: the power state the relay contact gives the node. */
  powered: boolean;
}

export interface PowerBenchOptions {
  /** Where emulated devices put their stable links (like /dev/serial/by-id). */
  devDir: string;
  seed?: number;
  log?: (s: string) => void;
}

export class PowerBench {
  readonly nodes = new Map<string, NodePower>();
  readonly boards = new Map<string, FirmataBoard>();
  readonly setup: string[] = [];
  readonly transitions: (RelayTransition & { node: string })[] = [];
  private readonly virtualBoards = new Map<string, VirtualFirmataBoard>();
  private readonly emulators: { stop(): Promise<void> }[] = [];
  private readonly models: PowerModel[] = [];
  private readonly activities = new Map<string, NodeActivity>();
  private readonly virtualNodes = new Map<string, VirtualNode>();
  private readonly markerLogs = new Map<string, MarkerLog>();
  private readonly relayPins = new Map<string, { node: string; relay: RigRelay }>();

  private constructor(readonly rig: Rig, readonly opts: PowerBenchOptions) {}

  /** True when the rig has anything for this module to do. */
  static wanted(rig: Rig): boolean {
    return rig.meters.length + rig.boards.length + rig.relays.length + rig.markers.length > 0;
  }

  /** Boards and relays first (nodes must be powered before they can boot), then the emulated meters' models. */
  static async open(rig: Rig, opts: PowerBenchOptions): Promise<PowerBench> {
    const pb = new PowerBench(rig, opts);
    // the stable links live here; a virtual node's firmware does not create the directory of its --pty-link
    mkdirSync(opts.devDir, { recursive: true });
    try {
      await pb.openBoards();
      for (const n of rig.nodes) {
        pb.nodes.set(n.name, { node: n.name, board: n.board, marker: { kind: 'none' }, powered: true, ...(n.battery ? { battery: n.battery } : {}) });
      }
      for (const m of rig.markers) {
        const log = new MarkerLog();
        pb.markerLogs.set(m.node, log);
        pb.nodes.get(m.node)!.marker = { kind: 'firmata', log };
        const board = pb.boards.get(m.board)!;
        board.watchDigital(m.pin, (v, t) => log.add(v === 1, t));
        pb.setup.push(`marker: ${m.node} → ${m.board} pin ${m.pin}`);
      }
      await pb.openRelays();
    } catch (e) {
      await pb.close();
      throw e;
    }
    return pb;
  }

  private async openBoards(): Promise<void> {
    for (const b of this.rig.boards) {
      let path = b.port ?? '';
      if (b.emulated) {
        const vb = new VirtualFirmataBoard({ name: b.name, link: join(this.opts.devDir, `firmata-${b.name}`) });
        path = await vb.start();
        vb.onPinWrite = (pin, level) => this.onVirtualPin(b.name, pin, level);
        this.virtualBoards.set(b.name, vb);
        this.emulators.push(vb);
      }
      const t0 = performance.now();
      const fb = await FirmataBoard.open({ path, name: b.name });
      this.boards.set(b.name, fb);
      this.setup.push(`Firmata board ${b.name}${b.emulated ? ' (emulated StandardFirmata on a pty)' : ''} on ${path}: johnny-five ready in ${(performance.now() - t0).toFixed(0)} ms`);
    }
  }

  private async openRelays(): Promise<void> {
    for (const r of this.rig.relays) {
      this.relayPins.set(`${r.board}:${r.pin}`, { node: r.node, relay: r });
      const driver = new RelayDriver(this.boards.get(r.board)!, { name: r.name, pin: r.pin, type: r.contact, isInverted: r.active_low });
      driver.onTransition = (tr) => this.transitions.push({ ...tr, node: r.node });
      await driver.init();
      // init() leaves the coil at rest; a NO contact then cuts the node's power: switch it on for the run
      if (driver.state === 'off') driver.on();
      this.nodes.get(r.node)!.relay = { rig: r, driver };
      this.setup.push(`relay ${r.name}: ${r.board} pin ${r.pin} (${r.contact}, ${r.active_low ? 'active-low' : 'active-high'}) in ${r.node}'s supply`);
    }
  }

  /** The emulated board's pin levels drive the emulated relay coils: an open contact kills the virtual node. */
  private onVirtualPin(board: string, pin: number, level: 0 | 1 | null): void {
    const hit = this.relayPins.get(`${board}:${pin}`);
    if (!hit) return;
    const energized = hit.relay.active_low ? level === 0 : level === 1;
    const powered = hit.relay.contact === 'NO' ? energized : !energized;
    const np = this.nodes.get(hit.node)!;
    if (np.powered === powered) return;
    np.powered = powered;
    const vn = this.virtualNodes.get(hit.node);
    if (!vn) return;
    if (!powered) void vn.powerOff();
    else void vn.powerOff().then(() => vn.start()).catch((e: Error) => this.opts.log?.(`virtual node ${hit.node} did not boot: ${e.message}`));
  }

  /** What a virtual node needs at boot: a stable pty link, its marker routed here, its pid for the model. */
  virtualHooks(node: string): { link: string; onMarker: (high: boolean, t: number) => void; onStart: (pid: number) => void } {
    const act = this.activities.get(node) ?? new NodeActivity();
    this.activities.set(node, act);
    return {
      link: join(this.opts.devDir, `node-${node}`),
      onMarker: (high, t) => {
        const np = this.nodes.get(node);
        const slot = np?.meter;
        if (np?.marker.kind === 'meter' && slot) this.ppk2Emulator.get(node)?.setDigital(high ? 1 << np.marker.channel : 0, t);
        const m = this.rig.markers.find((x) => x.node === node);
        if (m) this.virtualBoards.get(m.board)?.setInput(m.pin, high ? 1 : 0);
      },
      onStart: (pid) => act.attach(pid),
    };
  }

  private readonly ppk2Emulator = new Map<string, Ppk2Emulator>();

  /** Called once the nodes are up: opens every meter (starting the emulators of virtual ones). */
  async attachNodes(virtual: Map<string, VirtualNode>): Promise<void> {
    for (const [k, v] of virtual) this.virtualNodes.set(k, v);
    for (const m of this.rig.meters) await this.openMeter(m);
  }

  private async openMeter(m: RigMeter): Promise<void> {
    const np = this.nodes.get(m.node)!;
    let model: PowerModel | undefined;
    let source: ((t: number) => { v: number; a: number }) | undefined;
    if (m.emulated) {
      const act = this.activities.get(m.node) ?? new NodeActivity();
      this.activities.set(m.node, act);
      model = new PowerModel({ board: np.board, activity: act, seed: (this.opts.seed ?? 1) + this.models.length, horizonMs: 600_000 }).start(1);
      this.models.push(model);
      const mdl = model;
      // No supply, no current: an open relay contact takes the node (and its draw) away.
      source = (t) => (np.powered ? mdl.sampleAt(Math.min(Math.max(t, mdl.startMs), mdl.endMs)) : { v: mdl.profile.volts, a: 0 });
    }
    let driver: MeterDriver;
    let path = m.port ?? '';
    const link = join(this.opts.devDir, `meter-${m.name}`);
    switch (m.kind) {
      case 'um34c':
      case 'um25c': {
        if (source) {
          // converts on its own 10 Hz clock: on the virtual rig the host's polls run on the same event loop as the
          // load, and sampling at poll time would correlate with it
          const em = new UmEmulator({ source, model: m.kind, link, name: m.name, internalPeriodMs: 100 });
          path = await em.start();
          this.emulators.push(em);
        }
        driver = new UmMeterDriver({ path, name: m.name });
        break;
      }
      case 'ppk2': {
        if (source) {
          const mdl = model!;
          const em = new Ppk2Emulator({ source, horizon: () => mdl.endMs, link, name: m.name });
          path = await em.start();
          this.emulators.push(em);
          this.ppk2Emulator.set(m.node, em);
        }
        driver = new Ppk2Driver({ path, name: m.name, mode: m.source_mv ? 'source' : 'ampere', vddMv: m.source_mv ?? Math.round((model?.profile.volts ?? 5) * 1000) });
        if (m.marker_channel !== undefined) np.marker = { kind: 'meter', channel: m.marker_channel };
        break;
      }
      case 'ina219':
      case 'ina226': {
        const address = m.address ?? (m.kind === 'ina219' ? 0x40 : 0x41);
        if (source) this.virtualBoards.get(m.board!)!.attachI2c(address, new VirtualIna(m.kind, { shuntOhms: m.shunt_ohms, source }));
        driver = new Ina2xxMeter({ name: m.name, kind: m.kind, board: this.boards.get(m.board!)!, address, shuntOhms: m.shunt_ohms, maxCurrentA: m.max_current_a });
        path = `${m.board} I2C 0x${address.toString(16)}`;
        break;
      }
    }
    const ring = SampleRing.forRate(driver.info.rateHz, driver.info.rateHz > 1000 ? 20 : 600);
    driver.on('samples', (b: SampleBatch) => ring.push(b));
    driver.on('error', (e: Error) => this.opts.log?.(`meter ${m.name}: ${e.message}`));
    await driver.start();
    np.meter = { rig: m, driver, ring, ...(model ? { model } : {}) };
    this.setup.push(`meter ${m.name}: ${m.kind}${m.emulated ? ' (emulated on a pty, readings from the power model of a ' + np.board + ' driven by the node process\'s /proc CPU time and bytes written)' : ''} on ${path}, ${driver.info.rateHz} Hz, measuring ${m.node}`);
  }

  /** Waits until the meter has delivered samples up to host time t (plus its latency), or the timeout. */
  async samplesUpTo(slot: MeterSlot, t: number, timeoutMs = 3000): Promise<boolean> {
    const end = hostNow() + timeoutMs;
    while (slot.ring.lastT < t) {
      if (hostNow() > end) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** Virtual rig: waits until the model's board has finished the work the host handed it (backlog drained). */
  async drained(slot: MeterSlot, timeoutMs = 60_000): Promise<number> {
    const m = slot.model;
    const end = hostNow() + timeoutMs;
    if (!m) return hostNow();
    while (m.backlogSeconds.cpu + m.backlogSeconds.radio > 0 && hostNow() < end) await new Promise((r) => setTimeout(r, 5));
    return hostNow();
  }

  /** Power-cycles a node through its relay (off for the rig's off_ms, then on). */
  async powerCycle(node: string): Promise<boolean> {
    const r = this.nodes.get(node)?.relay;
    if (!r) return false;
    await r.driver.powerCycle(r.rig.off_ms);
    return true;
  }

  async close(): Promise<void> {
    for (const np of this.nodes.values()) await np.meter?.driver.stop().catch(() => undefined);
    for (const m of this.models) m.stop();
    for (const np of this.nodes.values()) np.relay?.driver.dispose();
    for (const b of this.boards.values()) await b.close().catch(() => undefined);
    for (const e of this.emulators.reverse()) await e.stop().catch(() => undefined);
    try {
      rmdirSync(this.opts.devDir); // only when empty: every link in it is gone
    } catch { /* not empty or already gone */ }
  }
}
