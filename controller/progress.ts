// Progress for long work: a redrawn bar with ETA on a TTY, plain lines otherwise. Units (operations) drive
// the bar and the ETA; notes (a finished cell) are printed as lines in both modes.
export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private readonly tty: boolean;
  private lastDraw = 0;

  constructor(private readonly total: number, private readonly label: string, private readonly out: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {
    this.tty = !!out.isTTY && !quiet;
  }

  private eta(): string {
    if (this.done === 0) return '--:--';
    const s = Math.max(0, Math.round((((Date.now() - this.start) / this.done) * (this.total - this.done)) / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  /** `units` more done (e.g. one operation). */
  add(units = 1): void {
    this.done += units;
    this.draw();
  }

  /** A line for the log (a finished cell): above the bar on a TTY, plain otherwise. */
  note(line: string): void {
    if (this.quiet) return;
    if (this.tty) {
      this.out.write(`\r\x1b[2K${line}\n`);
      this.draw(true);
    } else {
      this.out.write(`${line}\n`);
    }
  }

  private draw(force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    const width = 28;
    const frac = this.total ? Math.min(1, this.done / this.total) : 1;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const text = `${this.label} ${bar} ${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ETA ${this.eta()}`;
    const cols = this.out.columns || 100;
    this.out.write(`\r\x1b[2K${text.slice(0, cols - 1)}`);
  }

  finish(): void {
    if (this.tty) this.out.write('\n');
  }
}
