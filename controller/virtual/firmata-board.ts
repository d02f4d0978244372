// A virtual Arduino Uno running StandardFirmata 2.5 on a real pseudo-terminal: it speaks the Firmata byte protocol
// (MIDI-style messages plus sysex), so johnny-five / firmata-io drive it exactly as they drive a real board.
// It models what a relay module or a marker line sees electrically: each pin's AVR DDR (output enable) and PORT bit
// (output level or pull-up), so "which level did the relay input see, when" is observable (onPinWrite).
// I2C devices (INA219/INA226 register files below) hang off the emulated Wire (I2C) bus at their addresses.
// Unplug/replug (pty.unplug()/pty.replug(), or unplug()/replug() here): the USB-serial link goes away and comes
// back behind the same link path. Modelled choice: the board is powered independently of the link (external supply),
// so while unplugged pins keep their levels and I2C devices keep their registers; the replug resets the Uno (the
// host's open toggles DTR, as a real replug does): every pin high-Z during the bootloader, then StandardFirmata's
// reset per bootPinMode, continuous I2C reads and reporting cleared, sampling interval back to 19 ms. An I2C chip
// that loses power with the board is modelled by the test resetting it (chip.write([0, 0x80, 0])).
// Wire faults for driver tests: corruptNextI2cReply() truncates, breaks (stray status byte) or unterminates an
// I2C_REPLY sysex.
import { EventEmitter } from 'node:events';
import { PtyEndpoint } from './pty.js';
import { hostNow } from '../drivers/meter.js';

// Firmata command bytes (protocol 2.6).
const DIGITAL_MESSAGE = 0x90, ANALOG_MESSAGE = 0xe0, REPORT_ANALOG = 0xc0, REPORT_DIGITAL = 0xd0;
const SET_PIN_MODE = 0xf4, SET_DIGITAL_PIN_VALUE = 0xf5, REPORT_VERSION = 0xf9, SYSTEM_RESET = 0xff;
const START_SYSEX = 0xf0, END_SYSEX = 0xf7;
const ANALOG_MAPPING_QUERY = 0x69, ANALOG_MAPPING_RESPONSE = 0x6a, CAPABILITY_QUERY = 0x6b, CAPABILITY_RESPONSE = 0x6c;
const PIN_STATE_QUERY = 0x6d, PIN_STATE_RESPONSE = 0x6e, STRING_DATA = 0x71, I2C_REQUEST = 0x76, I2C_REPLY = 0x77;
const I2C_CONFIG = 0x78, REPORT_FIRMWARE = 0x79, SAMPLING_INTERVAL = 0x7a;

export const MODE = { INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, SERVO: 4, I2C: 6, PULLUP: 0x0b } as const;

// Arduino Uno (ATmega328P) as StandardFirmata's Boards.h describes it: 20 pins, 0/1 are the serial port.
const TOTAL_PINS = 20;
const isDigital = (p: number): boolean => p >= 2 && p <= 19;
const isAnalog = (p: number): boolean => p >= 14 && p <= 19;
const isPwm = (p: number): boolean => [3, 5, 6, 9, 10, 11].includes(p);
const isI2c = (p: number): boolean => p === 18 || p === 19;
const I2C_MAX_QUERIES = 8;

/** Electrical level a pin presents to what is wired to it: 1/0 driven (or 1 = internal pull-up), null = high-Z. */
export type PinLevel = 0 | 1 | null;

/** An I2C peripheral on the emulated bus: a write sets the register pointer (+ data), a read returns bytes. */
export interface I2cDevice {
  write(bytes: number[]): void;
  read(count: number): number[];
}

interface Pin {
  mode: number; // Firmata's record
  state: number; // Firmata's pin state (output value / pull-up flag)
  ddr: 0 | 1; // AVR output enable
  port: 0 | 1; // AVR PORT bit: output level, or pull-up when an input
  external: 0 | 1 | null; // what drives the pin from outside (a node's marker line)
  analog: number; // ADC reading for A0..A5
}

interface Query { addr: number; reg: number; bytes: number; }

/** How corruptNextI2cReply breaks a reply on the wire. */
export type I2cReplyFault = 'truncate' | 'framing' | 'unterminated';

export interface VirtualFirmataOptions {
  name?: string;
  /** Stable symlink for the pty (like /dev/serial/by-id/...). */
  link?: string;
  /**
   * 'output': StandardFirmata's reset leaves every digital pin OUTPUT LOW (what a stock Uno does at power-up:
   * an active-low relay module switches ON until the host writes). 'input': pins stay high-Z inputs
   * (a patched firmware, or the bootloader window).
   */
  bootPinMode?: 'output' | 'input';
  /** Paces bytes both ways at this baud rate (10 bits per byte; default 57600, StandardFirmata's); 0 = unpaced. */
  baud?: number;
  firmwareName?: string;
}

/** Events: 'pin' (pin, level, tMs), 'string' (text sent to the host). */
export class VirtualFirmataBoard extends EventEmitter {
  readonly pty: PtyEndpoint;
  /** Called whenever a pin's electrical level changes (relay inputs watch this). */
  onPinWrite?: (pin: number, level: PinLevel, tMs: number) => void;
  readonly stats = { bytesIn: 0, bytesOut: 0, unknown: 0, i2cReads: 0, i2cWrites: 0, boots: 0, corrupted: 0 };
  private faults: { kind: I2cReplyFault; address?: number; register?: number; stray: number }[] = [];
  private readonly pins: Pin[] = [];
  private readonly lastLevel = new Map<number, PinLevel>();
  private readonly devices = new Map<number, I2cDevice>();
  private reportPorts = [false, false, false];
  private previousPorts = [0, 0, 0];
  private analogReport = 0;
  private queries: Query[] = [];
  /** I2C_CONFIG's read delay (µs); the emulated bus needs none, kept for inspection. */
  i2cDelayUs = 0;
  private samplingMs = 19;
  private timer?: NodeJS.Timeout;
  private msg: number[] = [];
  private readonly tx: Uart;
  private readonly rx: Uart;

  constructor(readonly opts: VirtualFirmataOptions = {}) {
    super();
    const baud = opts.baud ?? 57600;
    this.pty = new PtyEndpoint({ link: opts.link, name: opts.name ?? 'firmata' });
    this.tx = new Uart(baud, (b) => void this.pty.write(b));
    this.rx = new Uart(baud, (b) => this.onBytes(b));
    this.pty.on('data', (b: Buffer) => this.rx.send(b));
    this.pty.on('plug', () => this.boot());
    this.pty.on('unplug', () => this.halt());
    for (let p = 0; p < TOTAL_PINS; p++) this.pins.push({ mode: MODE.INPUT, state: 0, ddr: 0, port: 0, external: null, analog: 0 });
  }

  get path(): string {
    return this.pty.path;
  }

  /** Powers the board up: pins reset as the firmware does, then the version and firmware name are announced. */
  start(): Promise<string> {
    return this.pty.start(); // boot() runs on the pty's 'plug'
  }

  /** Pulls the USB cable: the host's port vanishes; pins and I2C registers are kept (see the top of the file). */
  unplug(): Promise<void> {
    return this.pty.unplug();
  }

  /** Plugs it back in behind the same link: the Uno resets (pins per bootPinMode) and announces itself. */
  replug(): Promise<string> {
    return this.pty.replug();
  }

  /**
   * Test hook: the next I2C_REPLY (for this address/register when given) goes out broken:
   *  - 'truncate': one data byte fewer than requested (a well-formed sysex);
   *  - 'framing': a stray status byte (default 0x90, DIGITAL_MESSAGE port 0) right after the address and register;
   *  - 'unterminated': END_SYSEX missing (the next message's status byte ends it).
   */
  corruptNextI2cReply(kind: I2cReplyFault, o: { address?: number; register?: number; stray?: number } = {}): void {
    this.faults.push({ kind, address: o.address, register: o.register, stray: o.stray ?? 0x90 });
  }

  /** The Uno comes out of reset (power-on or the DTR pulse of a replug). */
  private boot(): void {
    this.stats.boots++;
    this.halt();
    this.samplingMs = 19;
    this.i2cDelayUs = 0;
    for (const [pin, p] of this.pins.entries()) { // power-on: every pin a high-Z input until the firmware runs
      Object.assign(p, { mode: MODE.INPUT, state: 0, ddr: 0, port: 0 });
      if (this.lastLevel.has(pin)) this.changed(pin); // a replug after unplug() shows the outage
    }
    this.systemReset(this.opts.bootPinMode ?? 'output');
    this.reportVersion();
    this.reportFirmware();
    this.schedule();
  }

  /** The link is gone: nothing more goes out, half-received messages are lost. */
  private halt(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.tx.clear();
    this.rx.clear();
    this.msg = [];
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.tx.clear();
    this.rx.clear();
    await this.pty.stop();
  }

  attachI2c(address: number, device: I2cDevice): void {
    this.devices.set(address, device);
  }

  /** What the pin presents to the outside (a relay input sees this). */
  level(pin: number): PinLevel {
    const p = this.pins[pin]!;
    if (p.ddr) return p.port;
    return p.port ? 1 : null;
  }

  mode(pin: number): number {
    return this.pins[pin]!.mode;
  }

  /** Drives a pin from outside (e.g. a node's marker GPIO); null releases it. Reported like a real input change. */
  setInput(pin: number, value: 0 | 1 | null): void {
    this.pins[pin]!.external = value;
    setImmediate(() => this.checkDigitalInputs()); // the firmware's main loop polls inputs continuously
  }

  setAnalog(channel: number, value: number): void {
    this.pins[14 + channel]!.analog = Math.max(0, Math.min(1023, Math.round(value)));
  }

  // ---- host → board -------------------------------------------------------------------------------------------

  private onBytes(b: Buffer): void {
    this.stats.bytesIn += b.length;
    for (const byte of b) {
      if (byte === START_SYSEX || (byte & 0x80 && this.msg[0] !== START_SYSEX)) this.msg = [];
      if (byte === END_SYSEX && this.msg[0] === START_SYSEX) {
        this.sysex(this.msg[1] ?? -1, this.msg.slice(2));
        this.msg = [];
        continue;
      }
      this.msg.push(byte);
      if (this.msg[0] !== START_SYSEX) this.tryMessage();
    }
  }

  private tryMessage(): void {
    const [cmd, a = 0, b = 0] = this.msg;
    if (cmd === undefined || !(cmd & 0x80)) return void (this.msg = []); // stray data byte
    const type = cmd < 0xf0 ? cmd & 0xf0 : cmd;
    const need = type === REPORT_VERSION || type === SYSTEM_RESET ? 1
      : type === REPORT_ANALOG || type === REPORT_DIGITAL ? 2 : 3;
    if (this.msg.length < need) return;
    this.msg = [];
    switch (type) {
      case DIGITAL_MESSAGE: return this.digitalWritePort(cmd & 0x0f, a | (b << 7));
      case ANALOG_MESSAGE: return this.analogWrite(cmd & 0x0f, a | (b << 7));
      case REPORT_ANALOG: return this.reportAnalog(cmd & 0x0f, a);
      case REPORT_DIGITAL: return this.reportDigital(cmd & 0x0f, a);
      case SET_PIN_MODE: return this.setPinMode(a, b);
      case SET_DIGITAL_PIN_VALUE: return this.setPinValue(a, b);
      case REPORT_VERSION: return this.reportVersion();
      case SYSTEM_RESET: return this.systemReset(this.opts.bootPinMode ?? 'output');
      default: this.stats.unknown++;
    }
  }

  private sysex(cmd: number, argv: number[]): void {
    switch (cmd) {
      case REPORT_FIRMWARE: return this.reportFirmware();
      case CAPABILITY_QUERY: return this.capabilities();
      case ANALOG_MAPPING_QUERY:
        return this.send([START_SYSEX, ANALOG_MAPPING_RESPONSE, ...this.pins.map((_, p) => (isAnalog(p) ? p - 14 : 127)), END_SYSEX]);
      case PIN_STATE_QUERY: return this.pinState(argv[0] ?? 0xff);
      case SAMPLING_INTERVAL:
        this.samplingMs = Math.max(1, (argv[0] ?? 0) | ((argv[1] ?? 0) << 7));
        return this.schedule();
      case I2C_CONFIG:
        this.i2cDelayUs = (argv[0] ?? 0) | ((argv[1] ?? 0) << 7);
        for (const p of [18, 19]) this.applyMode(p, MODE.I2C);
        return;
      case I2C_REQUEST: return this.i2cRequest(argv);
      default: this.stats.unknown++; // StandardFirmata ignores sysex it does not know
    }
  }

  // ---- pins ---------------------------------------------------------------------------------------------------

  /** StandardFirmata's systemResetCallback: analog-capable pins to ANALOG, other digital pins to OUTPUT. */
  private systemReset(digital: 'output' | 'input'): void {
    this.reportPorts = [false, false, false];
    this.previousPorts = [0, 0, 0];
    this.queries = [];
    for (let p = 0; p < TOTAL_PINS; p++) {
      if (isAnalog(p)) this.setPinMode(p, MODE.ANALOG);
      else if (isDigital(p) && digital === 'output') this.setPinMode(p, MODE.OUTPUT);
    }
    this.analogReport = 0;
  }

  private setPinMode(pin: number, mode: number): void {
    if (!(Object.values(MODE) as number[]).includes(mode)) return this.sendString('Unknown pin mode');
    if (pin < TOTAL_PINS && this.supports(pin, mode)) this.applyMode(pin, mode); // else ignored, like the firmware
  }

  private supports(pin: number, mode: number): boolean {
    switch (mode) {
      case MODE.INPUT: case MODE.OUTPUT: case MODE.PULLUP: case MODE.SERVO: return isDigital(pin);
      case MODE.ANALOG: return isAnalog(pin);
      case MODE.PWM: return isPwm(pin);
      case MODE.I2C: return isI2c(pin);
      default: return false;
    }
  }

  /** Firmware pin-mode change with the AVR semantics that matter for relays: OUTPUT keeps the PORT bit. */
  private applyMode(pin: number, mode: number): void {
    const p = this.pins[pin]!;
    const was = p.mode;
    if (isAnalog(pin)) this.reportAnalog(pin - 14, mode === MODE.ANALOG ? 1 : 0, true);
    p.state = 0;
    switch (mode) {
      case MODE.ANALOG: case MODE.INPUT: case MODE.I2C:
        p.ddr = 0; p.port = 0; // Arduino pinMode(INPUT) also drops the pull-up
        break;
      case MODE.PULLUP:
        p.ddr = 0; p.port = 1; p.state = 1;
        break;
      case MODE.OUTPUT:
        if (was === MODE.PWM) p.port = 0; // leaving PWM: the firmware writes LOW
        p.ddr = 1;
        break;
      case MODE.PWM: case MODE.SERVO:
        p.ddr = 1; p.port = 0;
        break;
    }
    p.mode = mode;
    this.changed(pin);
  }

  private changed(pin: number): void {
    const level = this.level(pin);
    if (this.lastLevel.has(pin) && this.lastLevel.get(pin) === level) return;
    this.lastLevel.set(pin, level);
    const t = hostNow();
    this.onPinWrite?.(pin, level, t);
    this.emit('pin', pin, level, t);
  }

  /** DIGITAL_MESSAGE: writes OUTPUT pins of a port; a 1 on an INPUT pin turns its pull-up on (Arduino ≥ 1.0.1). */
  private digitalWritePort(port: number, value: number): void {
    for (let i = 0; i < 8; i++) {
      const pin = port * 8 + i;
      if (pin >= TOTAL_PINS || !isDigital(pin)) continue;
      const p = this.pins[pin]!;
      const bit = ((value >> i) & 1) as 0 | 1;
      if (p.mode === MODE.OUTPUT) {
        p.port = bit;
      } else if (p.mode === MODE.INPUT) {
        if (bit === 1 && p.state !== 1) p.port = 1;
      } else continue;
      p.state = bit;
      this.changed(pin);
    }
  }

  /** SET_DIGITAL_PIN_VALUE: one pin, and only when it is an OUTPUT (the firmware ignores it otherwise). */
  private setPinValue(pin: number, value: number): void {
    const p = this.pins[pin];
    if (!p || !isDigital(pin) || p.mode !== MODE.OUTPUT) return;
    p.state = value ? 1 : 0;
    p.port = value ? 1 : 0;
    this.changed(pin);
  }

  private analogWrite(pin: number, value: number): void {
    const p = this.pins[pin];
    if (!p || (p.mode !== MODE.PWM && p.mode !== MODE.SERVO)) return;
    p.state = value;
    if (p.mode === MODE.PWM) { p.port = value > 0 ? 1 : 0; this.changed(pin); } // duty > 0 counts as driven high
  }

  private reportAnalog(channel: number, on: number, silent = false): void {
    if (channel > 5) return;
    if (on) {
      this.analogReport |= 1 << channel;
      if (!silent) this.sendAnalog(channel); // sends the value at once, like the firmware
    } else this.analogReport &= ~(1 << channel);
  }

  private reportDigital(port: number, on: number): void {
    if (port > 2) return;
    this.reportPorts[port] = !!on;
    if (on) this.sendPort(port, true);
  }

  private readPort(port: number): number {
    let v = 0;
    for (let i = 0; i < 8; i++) {
      const p = this.pins[port * 8 + i];
      if (!p || (p.mode !== MODE.INPUT && p.mode !== MODE.PULLUP)) continue;
      const level = p.external ?? (p.port ? 1 : 0); // undriven: the pull-up, or a floating pin reading 0
      v |= level << i;
    }
    return v;
  }

  private sendPort(port: number, force: boolean): void {
    const v = this.readPort(port);
    if (!force && v === this.previousPorts[port]) return;
    this.previousPorts[port] = v;
    this.send([DIGITAL_MESSAGE | port, v & 0x7f, (v >> 7) & 0x7f]);
  }

  private checkDigitalInputs(): void {
    for (let port = 0; port < 3; port++) if (this.reportPorts[port]) this.sendPort(port, false);
  }

  private sendAnalog(channel: number): void {
    const v = this.pins[14 + channel]!.analog;
    this.send([ANALOG_MESSAGE | channel, v & 0x7f, (v >> 7) & 0x7f]);
  }

  private pinState(pin: number): void {
    const p = this.pins[pin];
    if (!p) return;
    const out = [START_SYSEX, PIN_STATE_RESPONSE, pin, p.mode];
    let s = p.state;
    do { out.push(s & 0x7f); s >>= 7; } while (s > 0);
    this.send([...out, END_SYSEX]);
  }

  private capabilities(): void {
    const out = [START_SYSEX, CAPABILITY_RESPONSE];
    for (let p = 0; p < TOTAL_PINS; p++) {
      if (isDigital(p)) out.push(MODE.INPUT, 1, MODE.PULLUP, 1, MODE.OUTPUT, 1);
      if (isAnalog(p)) out.push(MODE.ANALOG, 10);
      if (isPwm(p)) out.push(MODE.PWM, 8);
      if (isDigital(p)) out.push(MODE.SERVO, 14);
      if (isI2c(p)) out.push(MODE.I2C, 1);
      out.push(0x7f);
    }
    this.send([...out, END_SYSEX]);
  }

  // ---- I2C ----------------------------------------------------------------------------------------------------

  private i2cRequest(argv: number[]): void {
    const addr = argv[0] ?? 0;
    const mode = (argv[1] ?? 0) & 0x18;
    if ((argv[1] ?? 0) & 0x20) return this.sendString('10-bit addressing not supported');
    const word = (i: number): number => (argv[i] ?? 0) | ((argv[i + 1] ?? 0) << 7);
    const withReg = argv.length === 6;
    const reg = withReg ? word(2) : -1;
    const bytes = withReg ? word(4) : word(2);
    switch (mode) {
      case 0x00: { // write
        const data: number[] = [];
        for (let i = 2; i + 1 < argv.length; i += 2) data.push(word(i) & 0xff);
        this.stats.i2cWrites++;
        this.devices.get(addr)?.write(data); // a missing device NACKs; the firmware does not report it
        return;
      }
      case 0x08: return this.readAndReport(addr, reg, bytes);
      case 0x10:
        if (this.queries.length >= I2C_MAX_QUERIES) return this.sendString('too many queries');
        this.queries.push({ addr, reg, bytes });
        return;
      case 0x18: { // stop reading: the firmware drops the first query for that address (or the first query at all)
        if (this.queries.length <= 1) this.queries = [];
        else this.queries.splice(Math.max(0, this.queries.findIndex((q) => q.addr === addr)), 1);
      }
    }
  }

  private readAndReport(addr: number, reg: number, count: number): void {
    const dev = this.devices.get(addr);
    this.stats.i2cReads++;
    if (dev && reg >= 0) dev.write([reg]);
    const data = dev ? dev.read(count) : [];
    if (data.length < count) this.sendString('I2C: Too few bytes received');
    const reply = [addr, reg & 0xff, ...Array.from({ length: count }, (_, i) => data[i] ?? 0)];
    const k = this.faults.findIndex((f) => (f.address === undefined || f.address === addr) && (f.register === undefined || f.register === reg));
    const fault = k >= 0 ? this.faults.splice(k, 1)[0] : undefined;
    if (fault?.kind === 'truncate') reply.pop();
    const wire = [START_SYSEX, I2C_REPLY, ...reply.flatMap((b) => [b & 0x7f, (b >> 7) & 0x7f]), END_SYSEX];
    if (fault?.kind === 'framing') wire.splice(6, 0, (fault.stray & 0xff) | 0x80);
    if (fault?.kind === 'unterminated') wire.pop();
    if (fault) this.stats.corrupted++;
    this.send(wire);
  }

  // ---- board → host -------------------------------------------------------------------------------------------

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.pty.plugged) return;
    this.timer = setTimeout(() => {
      for (let ch = 0; ch < 6; ch++) if (this.analogReport & (1 << ch)) this.sendAnalog(ch);
      for (const q of [...this.queries]) this.readAndReport(q.addr, q.reg, q.bytes);
      this.schedule();
    }, this.samplingMs);
  }

  private reportVersion(): void {
    this.send([REPORT_VERSION, 2, 6]);
  }

  private reportFirmware(): void {
    const name = [...Buffer.from(this.opts.firmwareName ?? 'StandardFirmata.ino')].flatMap((c) => [c & 0x7f, c >> 7]);
    this.send([START_SYSEX, REPORT_FIRMWARE, 2, 5, ...name, END_SYSEX]);
  }

  private sendString(s: string): void {
    this.emit('string', s);
    this.send([START_SYSEX, STRING_DATA, ...[...Buffer.from(s)].flatMap((c) => [c & 0x7f, c >> 7]), END_SYSEX]);
  }

  private send(bytes: number[]): void {
    this.stats.bytesOut += bytes.length;
    this.tx.send(Buffer.from(bytes));
  }
}

/** A UART at `baud` (10 bits a byte; 0 = instant): bytes come out when the last of them has been shifted, in order. */
class Uart {
  private readonly q: { due: number; buf: Buffer }[] = [];
  private freeAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly baud: number, private readonly deliver: (b: Buffer) => void) {}

  send(buf: Buffer): void {
    if (!this.baud) return this.deliver(buf);
    const now = performance.now();
    this.freeAt = Math.max(now, this.freeAt) + (buf.length * 10_000) / this.baud;
    this.q.push({ due: this.freeAt, buf });
    this.drain();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.q.length = 0;
  }

  private drain(): void {
    if (this.timer) return;
    const now = performance.now();
    const ready: Buffer[] = [];
    while (this.q.length && this.q[0]!.due <= now + 0.5) ready.push(this.q.shift()!.buf);
    if (ready.length) this.deliver(Buffer.concat(ready));
    if (this.q.length) this.timer = setTimeout(() => { this.timer = undefined; this.drain(); }, this.q[0]!.due - now);
  }
}

// ---- INA219 / INA226 register files -----------------------------------------------------------------------------

/** What flows through the shunt at host time tMs (ms since epoch): bus volts at the load, amperes. */
export type PowerSource = (tMs: number) => { v: number; a: number };

export interface VirtualInaOptions {
  shuntOhms: number;
  source: PowerSource;
}

const INA226_CT_US = [140, 204, 332, 588, 1100, 2116, 4156, 8244];
const INA226_AVG = [1, 4, 16, 64, 128, 256, 512, 1024];
const INA219_AVG_US = [532, 1060, 2130, 4260, 8510, 17020, 34050, 68100];

/** One INA219 ADC setting: how long a result takes, how many samples it averages, its quantization step (LSBs). */
interface Adc { us: number; samples: number; step: number }

/** A conversion cycle: period, mode, and the sampling instants of shunt and bus (ms from the cycle's start). */
interface Cycle { periodMs: number; mode: number; shStep: number; busStep: number; shAt: number[]; busAt: number[] }

function ina219Adc(bits4: number): Adc {
  if (!(bits4 & 0x8)) return { us: [84, 148, 276, 532][bits4 & 3]!, samples: 1, step: 1 << (3 - (bits4 & 3)) };
  const n = bits4 & 7;
  return { us: INA219_AVG_US[n]!, samples: 1 << n, step: 1 };
}

/**
 * INA219 (kind 'ina219') or INA226 (kind 'ina226') as their datasheets describe the registers: continuous or
 * triggered conversions on a timeline set by the configuration register, readings averaged from `source` over each
 * conversion window and quantized to the register LSB, current and power computed from the calibration register.
 */
export class VirtualIna implements I2cDevice {
  config: number;
  calibration = 0;
  private pointer = 0;
  private shunt = 0;
  private bus = 0;
  private current = 0;
  private power = 0;
  private ovf = 0;
  private ready = 0; // INA219 CNVR / INA226 CVRF
  private mask = 0; // INA226 mask/enable (writable bits)
  private alert = 0;
  private t0 = hostNow();
  private done = 0; // conversions completed since t0

  constructor(readonly kind: 'ina219' | 'ina226', readonly opts: VirtualInaOptions) {
    this.config = kind === 'ina219' ? 0x399f : 0x4127;
  }

  write(bytes: number[]): void {
    if (!bytes.length) return;
    this.pointer = bytes[0]!;
    if (bytes.length >= 3) this.writeReg(this.pointer, ((bytes[1]! << 8) | bytes[2]!) & 0xffff);
  }

  read(count: number): number[] {
    const v = this.readReg(this.pointer); // the pointer does not auto-increment: longer reads repeat the register
    return Array.from({ length: count }, (_, i) => (i % 2 ? v & 0xff : v >> 8));
  }

  private por(): void {
    Object.assign(this, { calibration: 0, shunt: 0, bus: 0, current: 0, power: 0, ovf: 0, ready: 0, mask: 0, alert: 0 });
    this.config = this.kind === 'ina219' ? 0x399f : 0x4127;
    this.restart();
  }

  private restart(): void {
    this.t0 = hostNow();
    this.done = 0;
    this.ready = 0;
  }

  private writeReg(reg: number, v: number): void {
    if (reg === 0) {
      if (v & 0x8000) return this.por();
      this.config = this.kind === 'ina219' ? v : (v & 0x0fff) | 0x4000;
      this.restart();
    } else if (reg === 5) this.calibration = this.kind === 'ina219' ? v & 0xfffe : v & 0x7fff;
    else if (this.kind === 'ina226' && reg === 6) this.mask = v & 0xfc03;
    else if (this.kind === 'ina226' && reg === 7) this.alert = v;
  }

  private readReg(reg: number): number {
    this.convert();
    const u16 = (x: number): number => x & 0xffff;
    if (this.kind === 'ina219') {
      switch (reg) {
        case 0: return this.config;
        case 1: return u16(this.shunt);
        case 2: return ((this.bus << 3) | (this.ready << 1) | this.ovf) & 0xffff;
        case 3: { const p = this.power; this.ready = 0; return p; } // reading power clears CNVR
        case 4: return u16(this.current);
        case 5: return this.calibration;
        default: return 0;
      }
    }
    switch (reg) {
      case 0: return this.config;
      case 1: return u16(this.shunt);
      case 2: return this.bus;
      case 3: return this.power;
      case 4: return u16(this.current);
      case 5: return this.calibration;
      case 6: { const v = this.mask | (this.ready << 3) | (this.ovf << 2); this.ready = 0; return v; } // read clears CVRF
      case 7: return this.alert;
      case 0xfe: return 0x5449; // "TI"
      case 0xff: return 0x2260;
      default: return 0;
    }
  }

  /**
   * The conversion cycle the configuration register asks for: its period, and when within it the ADC samples the
   * shunt and the bus. The INA219 converts (and averages) all shunt samples, then all bus samples; the INA226
   * alternates one shunt and one bus conversion per averaged sample.
   */
  private cycle(): Cycle | undefined {
    const c = this.config, mode = c & 7;
    if (mode === 0 || mode === 4) return undefined; // power-down / ADC off: registers hold
    const doShunt = (mode & 1) === 1, doBus = (mode & 2) === 2;
    const spread = (from: number, ms: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + ((i + 0.5) * ms) / n);
    if (this.kind === 'ina219') {
      const sh = ina219Adc((c >> 3) & 0xf), bus = ina219Adc((c >> 7) & 0xf);
      const shMs = doShunt ? sh.us / 1000 : 0, busMs = doBus ? bus.us / 1000 : 0;
      return {
        periodMs: shMs + busMs, mode, shStep: sh.step, busStep: bus.step,
        shAt: doShunt ? spread(0, shMs, Math.min(sh.samples, 16)) : [],
        busAt: doBus ? spread(shMs, busMs, Math.min(bus.samples, 16)) : [],
      };
    }
    const avg = INA226_AVG[(c >> 9) & 7]!;
    const ctSh = doShunt ? INA226_CT_US[(c >> 3) & 7]! / 1000 : 0, ctBus = doBus ? INA226_CT_US[(c >> 6) & 7]! / 1000 : 0;
    const pair = ctSh + ctBus, stride = Math.ceil(avg / 64); // every stride-th averaged sample is enough
    const js = Array.from({ length: Math.ceil(avg / stride) }, (_, i) => i * stride);
    return {
      periodMs: pair * avg, mode, shStep: 1, busStep: 1,
      shAt: doShunt ? js.map((j) => j * pair + ctSh / 2) : [],
      busAt: doBus ? js.map((j) => j * pair + ctSh + ctBus / 2) : [],
    };
  }

  /** Brings the result registers up to the last conversion completed before now (evaluated lazily on reads). */
  private convert(): void {
    const cy = this.cycle();
    if (!cy) return;
    let k = Math.floor((hostNow() - this.t0) / cy.periodMs);
    if (cy.mode < 4) k = Math.min(k, 1); // triggered: one conversion per configuration write
    if (k <= this.done) return;
    this.done = k;
    const start = this.t0 + (k - 1) * cy.periodMs;
    const mean = (at: number[], pick: (s: { v: number; a: number }) => number): number =>
      at.reduce((sum, dt) => sum + pick(this.opts.source(start + dt)), 0) / at.length;
    const q = (x: number, lsb: number, step: number, lo: number, hi: number): number =>
      Math.max(lo, Math.min(hi, Math.round(x / lsb / step) * step));
    const is219 = this.kind === 'ina219';
    if (cy.shAt.length) {
      const fs = is219 ? 4000 << ((this.config >> 11) & 3) : 32767;
      this.shunt = q(mean(cy.shAt, (s) => s.a * this.opts.shuntOhms), is219 ? 10e-6 : 2.5e-6, cy.shStep, is219 ? -fs : -32768, fs);
    }
    if (cy.busAt.length) {
      this.bus = q(mean(cy.busAt, (s) => s.v), is219 ? 4e-3 : 1.25e-3, cy.busStep, 0, is219 ? ((this.config >> 13) & 1 ? 8000 : 4000) : 32767);
    }
    // Current and power from the calibration register (datasheet: Current = Shunt × Cal / 4096 (INA219) or / 2048).
    const cur = Math.trunc((this.shunt * this.calibration) / (is219 ? 4096 : 2048));
    const pow = Math.trunc((Math.abs(cur) * this.bus) / (is219 ? 5000 : 20000));
    this.ovf = cur > 32767 || cur < -32768 || pow > 0xffff ? 1 : 0;
    this.current = Math.max(-32768, Math.min(32767, cur));
    this.power = Math.min(0xffff, pow);
    this.ready = 1;
  }
}
