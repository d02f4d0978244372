// Progress for long work: a redrawn bar with ETA on a TTY, one plain line per step otherwise.
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
    const s = Math.round(((Date.now() - this.start) / this.done) * (this.total - this.done) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  /** Marks one unit done; `line` is printed as-is when not on a TTY. */
  tick(line: string): void {
    this.done++;
    if (this.quiet) return;
    if (!this.tty) {
      this.out.write(`[${this.done}/${this.total}] ${line}\n`);
      return;
    }
    this.draw(line);
  }

  draw(status = ''): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    const width = 28;
    const frac = this.total ? this.done / this.total : 1;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const text = `${this.label} ${bar} ${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ETA ${this.eta()} ${status}`;
    const cols = this.out.columns || 100;
    this.out.write(`\r${text.slice(0, cols - 1).padEnd(cols - 1)}`);
  }

  finish(): void {
    if (this.tty) this.out.write('\n');
  }
}
