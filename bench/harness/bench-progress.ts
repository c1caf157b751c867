import cliProgress from 'cli-progress';

/**
 * The progress bar (cli-progress) on stderr, in seconds of load: planned
 * steps × their seconds. Off when stderr is not a TTY or with --json /
 * --no-progress; then status lines go to stderr as they are.
 */
export class BenchProgress {
  private readonly bar: cliProgress.SingleBar | undefined;
  private done = 0;
  private current = 0;
  private label = 'starting';

  constructor(totalSeconds: number, enabled: boolean) {
    if (enabled && process.stderr.isTTY === true) {
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: ' {bar} {percentage}% | {label} | eta {eta_formatted}',
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, Math.round(totalSeconds)), 0, { label: this.label });
    }
  }

  get active(): boolean {
    return this.bar !== undefined;
  }

  /** A step of `seconds` starts. */
  step(label: string): void {
    this.done += this.current;
    this.current = 0;
    this.label = label;
    this.bar?.update(Math.round(this.done), { label });
  }

  /** Seconds of load done in the current step. */
  within(seconds: number): void {
    this.current = seconds;
    this.bar?.update(Math.round(this.done + seconds), { label: this.label });
  }

  /** Planned seconds that will not run (a sweep stopped early). */
  skip(seconds: number): void {
    this.done += seconds;
    this.bar?.update(Math.round(this.done), { label: this.label });
  }

  /** A status line that does not break the bar. */
  log(line: string): void {
    if (this.bar !== undefined) {
      this.bar.stop();
      process.stderr.write(`${line}\n`);
      this.bar.start(this.bar.getTotal(), Math.round(this.done + this.current), {
        label: this.label,
      });
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
