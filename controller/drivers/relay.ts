// RelayDriver: a node's power through a relay on a Firmata pin, switched with johnny-five's Relay.
// "on" means the node is powered (its circuit is closed). Two wiring facts decide the pin level for that:
//  - type: which relay contact carries the node's power, NO (closed while the coil is energized) or NC;
//  - isInverted: the relay module's input is active-low (most opto-isolated modules: the coil is energized while
//    the pin is LOW).
// Safe start: an active-low module switches ON whenever its pin is driven LOW, e.g. when a pin that is an input
// (PORT bit 0) becomes an OUTPUT, which is what johnny-five's examples do. init() therefore never drives the
// energizing level: it parks the pin at the coil's rest level before enabling the output driver (see init()).
// Note the firmware's own hazard, which no host code can prevent: stock StandardFirmata makes every digital pin
// OUTPUT LOW when it boots (and on SYSTEM_RESET, which this driver never sends), so an active-low relay is ON from
// the board's power-up or auto-reset until init() runs. Fix it in hardware (active-high module, or a pull-up and
// a firmware that leaves pins as inputs) where a node must not see that pulse.
// Reconnect: a replugged Uno resets (its pins go back to the firmware's boot state), so on the board's 'reconnect'
// the relay takes its pin again the same way as init() (rest level first), then restores the last commanded state.
// Both steps are recorded with cause 'reconnect'. Between unplug and reconnect, on()/off() fail with E_CLOSED.
import { cleanup } from '../cleanup.js';
import { five, FirmataError, type FirmataBoard } from './firmata.js';
import { hostNow } from './meter.js';

export type RelayState = 'on' | 'off';

export interface RelayOptions {
  name: string;
  pin: number;
  /** Contact carrying the node's power. */
  type?: 'NO' | 'NC';
  /** Active-low module input. */
  isInverted?: boolean;
  /** What cleanup does when the controller exits: leave the relay as it is (default), or switch it. */
  atExit?: 'keep' | RelayState;
}

export interface RelayTransition {
  /** Host time (ms since epoch) the command was written to the board. */
  t: number;
  state: RelayState;
  /** Pin level commanded. */
  level: 0 | 1;
  cause: 'init' | 'on' | 'off' | 'powerCycle' | 'exit' | 'reconnect';
}

export class RelayDriver {
  /** Every commanded transition, for the run record. */
  readonly transitions: RelayTransition[] = [];
  onTransition?: (tr: RelayTransition) => void;
  private relay?: { open(): void; close(): void };
  private current?: RelayState;
  private unregister?: () => void;
  /** Pin level that powers the node. */
  readonly onLevel: 0 | 1;
  /** Pin level with the coil at rest (de-energized). */
  readonly restLevel: 0 | 1;

  constructor(readonly board: FirmataBoard, readonly opts: RelayOptions) {
    const type = opts.type ?? 'NO';
    const energized: 0 | 1 = opts.isInverted ? 0 : 1;
    this.restLevel = energized ? 0 : 1;
    this.onLevel = type === 'NO' ? energized : this.restLevel;
  }

  get state(): RelayState {
    if (!this.current) throw new FirmataError('E_PIN', `relay ${this.opts.name} is not initialized (call init())`);
    return this.current;
  }

  /**
   * Takes over the pin without a glitch and leaves the coil at rest (node off for NO, on for NC):
   *  - already an OUTPUT (stock firmware after boot): one SET_DIGITAL_PIN_VALUE to the rest level;
   *  - an input: rest level HIGH → PULLUP first (weak high), then OUTPUT, which on the AVR keeps the PORT bit the
   *    pull-up set, so the driver starts HIGH; rest level LOW → INPUT (drops any pull-up), then OUTPUT (LOW).
   * The result is checked with a pin state query.
   */
  async init(): Promise<void> {
    await this.take('init');
    if (!this.listening) {
      this.listening = true;
      this.board.on('reconnect', this.onReconnect);
    }
  }

  private listening = false;
  private retaking = false;

  /** The board came back from an unplug (and reset): rest level first, as init() does, then the last state. */
  private readonly onReconnect = (): void => {
    const want = this.current;
    this.retaking = true;
    this.take('reconnect')
      .finally(() => { this.retaking = false; })
      .then(() => { if (want && want !== this.current) this.set(want, 'reconnect'); })
      .catch((e: Error) => this.board.emit('warning', `relay ${this.opts.name}: could not take pin ${this.opts.pin} back after the reconnect: ${e.message}`));
  };

  private async take(cause: 'init' | 'reconnect'): Promise<void> {
    const { board, opts } = this;
    const io = board.io;
    const pin = opts.pin;
    if (!io.pins[pin]?.supportedModes.includes(io.MODES.OUTPUT)) throw new FirmataError('E_PIN', `relay ${opts.name}: pin ${pin} of ${board.name} cannot be a digital output`);
    const before = await board.pinState(pin);
    if (before.mode === io.MODES.PWM || before.mode === io.MODES.SERVO) {
      throw new FirmataError('E_PIN', `relay ${opts.name}: pin ${pin} of ${board.name} is in ${before.mode === io.MODES.PWM ? 'PWM' : 'servo'} mode (left by another program); power-cycle the board, then retry`);
    }
    if (before.mode !== io.MODES.OUTPUT) {
      io.pinMode(pin, this.restLevel ? io.MODES.PULLUP : io.MODES.INPUT);
      io.pinMode(pin, io.MODES.OUTPUT);
    }
    io.updateDigitalPort(pin, this.restLevel);
    board.setPinValue(pin, this.restLevel);
    const after = await board.pinState(pin);
    if (after.mode !== io.MODES.OUTPUT || after.state !== this.restLevel) {
      throw new FirmataError('E_PIN', `relay ${opts.name}: pin ${pin} of ${board.name} reads back mode ${after.mode} state ${after.state}, expected OUTPUT at ${this.restLevel}`);
    }
    // johnny-five's Relay: type 'NO' closes with HIGH, 'NC' with LOW; ours closes (powers the node) at onLevel.
    this.relay = new five.Relay({ pin, type: this.onLevel ? 'NO' : 'NC', board: board.board });
    this.record(this.restLevel === this.onLevel ? 'on' : 'off', cause);
    const atExit = opts.atExit ?? 'keep';
    if (atExit !== 'keep' && !this.unregister) {
      this.unregister = cleanup.add(`relay ${opts.name}`, () => {
        if (board.isOpen) this.set(atExit, 'exit');
      });
    }
  }

  on(): void {
    this.set('on', 'on');
  }

  off(): void {
    this.set('off', 'off');
  }

  /** Off, wait offMs, on: how a hung node is recovered. */
  async powerCycle(offMs: number): Promise<void> {
    this.set('off', 'powerCycle');
    await new Promise((r) => setTimeout(r, offMs));
    this.set('on', 'powerCycle');
  }

  dispose(): void {
    this.board.off('reconnect', this.onReconnect);
    this.listening = false;
    this.unregister?.();
    this.unregister = undefined;
  }

  private set(state: RelayState, cause: RelayTransition['cause']): void {
    if (!this.relay) throw new FirmataError('E_PIN', `relay ${this.opts.name} is not initialized (call init())`);
    if (!this.board.isOpen) throw new FirmataError('E_CLOSED', `relay ${this.opts.name}: Firmata board ${this.board.name} is closed`);
    if (this.retaking && cause !== 'reconnect') throw new FirmataError('E_CLOSED', `relay ${this.opts.name}: re-taking pin ${this.opts.pin} after a reconnect of ${this.board.name}`);
    if (state === 'on') this.relay.close();
    else this.relay.open();
    this.record(state, cause);
  }

  private record(state: RelayState, cause: RelayTransition['cause']): void {
    this.current = state;
    const tr: RelayTransition = { t: hostNow(), state, level: state === 'on' ? this.onLevel : ((1 - this.onLevel) as 0 | 1), cause };
    this.transitions.push(tr);
    this.onTransition?.(tr);
  }
}
