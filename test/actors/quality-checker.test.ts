import fc from 'fast-check';
import t from 'tap';
import { Features } from '../../actors/features.js';
import { QualityIssue } from '../../actors/output-layout.js';
import { QualityChecker } from '../../actors/quality-checker.js';
import { ErrorCodes } from '../../kernel/errors.js';

/** One generated tick of a clean market: seq +1, time forward, sane values. */
interface Tick {
  trade: boolean;
  dtUs: number;
  step: number; // |log return| in [0.5e-3, 1e-3] with a sign: never a spike at k = 8
  spread: number;
}

const tickArb = fc.record({
  trade: fc.boolean(),
  dtUs: fc.integer({ min: 1, max: 50_000 }),
  step: fc.double({ min: 0.0005, max: 0.001, noNaN: true }).chain((m) => fc.constantFrom(m, -m)),
  spread: fc.double({ min: 0.01, max: 1, noNaN: true }),
});

/** Feed a clean stream (with optional per-index mutations) and return the issue bits of each tick. */
function run(
  q: QualityChecker,
  ticks: Tick[],
  seqStep: (i: number) => number = () => 1,
  crossedAt: (i: number) => boolean = () => false,
): number[] {
  const f = new Features();
  let seq = 1000;
  let ts = 1_700_000_000_000_000;
  let px = 100;
  const bits: number[] = [];
  ticks.forEach((k, i) => {
    seq += seqStep(i);
    ts += k.dtUs;
    const recv = ts + 300;
    if (k.trade) {
      px *= Math.exp(k.step);
      bits.push(q.checkTrade(seq, ts, recv, px, 1, f.lastPx, f.vol, f.trades >= 30));
      f.onTrade(px);
    } else {
      const bid = px - k.spread / 2;
      const ask = crossedAt(i) ? bid - 0.01 : px + k.spread / 2;
      bits.push(q.checkQuote(seq, ts, recv, bid, 2, ask, 3));
    }
  });
  return bits;
}

void t.test('a clean stream scores 1 and raises no issue', (t) => {
  fc.assert(
    fc.property(fc.array(tickArb, { minLength: 1, maxLength: 300 }), (ticks) => {
      const q = new QualityChecker({ qualityWindowTicks: 1e9 });
      const bits = run(q, ticks);
      return (
        bits.every((b) => b === 0) &&
        q.score === 1 &&
        q.issueBits === 0 &&
        q.ticks === ticks.length &&
        !bits.some((b) => q.immediateDue(b))
      );
    }),
  );
  t.pass();
  t.end();
});

void t.test('injected gaps are counted exactly by the missing seqs', (t) => {
  fc.assert(
    fc.property(
      fc.array(tickArb, { minLength: 2, maxLength: 200 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 20 })), { maxLength: 10 }),
      (ticks, gapSpec) => {
        const gapAt = new Map<number, number>();
        for (const [at, missing] of gapSpec) {
          const i = 1 + (at % (ticks.length - 1)); // not the first tick: it has no predecessor
          gapAt.set(i, (gapAt.get(i) ?? 0) + missing);
        }
        const q = new QualityChecker({ qualityWindowTicks: 1e9 });
        const bits = run(q, ticks, (i) => 1 + (gapAt.get(i) ?? 0));
        const missing = [...gapAt.values()].reduce((a, b) => a + b, 0);
        const flagged = bits.filter((b) => (b & QualityIssue.SEQ_GAP) !== 0).length;
        const expectScore = 1 - missing / (ticks.length + missing);
        return (
          q.gaps === missing && flagged === gapAt.size && Math.abs(q.score - expectScore) < 1e-12
        );
      },
    ),
  );
  t.pass();
  t.end();
});

void t.test('crossed quotes are counted exactly', (t) => {
  fc.assert(
    fc.property(
      fc.array(tickArb, { minLength: 1, maxLength: 200 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (ticks, picks) => {
        const crossed = new Set(picks.map((p) => p % ticks.length).filter((i) => !ticks[i]!.trade));
        const q = new QualityChecker({ qualityWindowTicks: 1e9 });
        run(q, ticks, undefined, (i) => crossed.has(i));
        return (
          q.crossed === crossed.size &&
          Math.abs(q.score - (1 - crossed.size / ticks.length)) < 1e-12
        );
      },
    ),
  );
  t.pass();
  t.end();
});

void t.test('out of order, duplicates, stale, bad values and spikes', (t) => {
  const q = new QualityChecker();
  const T = 1_700_000_000_000_000;
  t.equal(q.checkTrade(10, T, T + 10, 100, 1, 0, 0, false), 0);
  t.equal(
    q.checkTrade(10, T + 1, T + 10, 100, 1, 100, 0, false),
    QualityIssue.OUT_OF_ORDER,
    'duplicate seq',
  );
  t.equal(
    q.checkTrade(9, T + 2, T + 10, 100, 1, 100, 0, false),
    QualityIssue.OUT_OF_ORDER,
    'older seq',
  );
  t.equal(
    q.checkTrade(11, T - 5, T + 10, 100, 1, 100, 0, false),
    QualityIssue.OUT_OF_ORDER,
    'older time',
  );
  t.equal(q.checkTrade(12, T + 3, T + 3 + 5_000_001, 100, 1, 100, 0, false), QualityIssue.STALE);
  t.equal(
    q.checkTrade(13, T + 4, T + 10, 0, 1, 100, 0, false),
    QualityIssue.BAD_VALUE,
    'zero price',
  );
  t.equal(
    q.checkTrade(14, T + 5, T + 10, 100, -1, 100, 0, false),
    QualityIssue.BAD_VALUE,
    'negative size',
  );
  t.equal(
    q.checkQuote(15, T + 6, T + 10, 100, 0, 101, 1),
    QualityIssue.BAD_VALUE,
    'zero quote size',
  );
  t.equal(
    q.checkTrade(16, T + 7, T + 10, 110, 1, 100, 0.001, true),
    QualityIssue.SPIKE,
    '|r| ≈ 0.095 > 8 · 0.001',
  );
  t.equal(q.checkTrade(17, T + 8, T + 10, 110, 1, 100, 0.001, false), 0, 'no spike during warm-up');
  t.equal(q.checkTrade(18, T + 9, T + 10, 100.5, 1, 100, 0.001, true), 0, '|r| ≈ 0.005 < 0.008');
  t.equal(q.ticks, 11);
  t.equal(q.outOfOrder, 3);
  t.equal(q.stale, 1);
  t.equal(q.badValues, 3);
  t.equal(q.spikes, 1);
  // weights: 3 out-of-order + 3 bad values at 1, stale and spike at 0.5
  t.equal(q.score, 1 - 7 / 11);
  const p = new Float64Array(9);
  q.writePayload(p);
  t.equal(p[0], q.score);
  t.equal(
    p[7],
    QualityIssue.OUT_OF_ORDER | QualityIssue.STALE | QualityIssue.BAD_VALUE | QualityIssue.SPIKE,
  );
  q.resetWindow();
  t.equal(q.score, 1);
  t.equal(
    q.checkTrade(20, T + 20, T + 30, 100, 1, 100, 0, false),
    QualityIssue.SEQ_GAP,
    'seq survives the window',
  );
  t.equal(q.gaps, 1);
  t.end();
});

void t.test('immediate records are bounded to one per interval of exchange time', (t) => {
  const q = new QualityChecker({ qualityImmediateIntervalUs: 100_000 });
  const T = 1_700_000_000_000_000;
  let n = 0;
  // 1 000 crossed quotes, one per ms: 1 s of exchange time
  for (let i = 0; i < 1000; i++) {
    const bits = q.checkQuote(i + 1, T + i * 1000, T + i * 1000, 101, 1, 100, 1);
    if (q.immediateDue(bits)) n++;
  }
  t.equal(n, 10, 'one per 100 ms over 1 s');
  t.notOk(q.immediateDue(0), 'a clean tick never triggers one');
  t.end();
});

void t.test('bad options are rejected naming the key', (t) => {
  t.throws(() => new QualityChecker({ qualityWindowTicks: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /qualityWindowTicks/,
  });
  t.throws(() => new QualityChecker({ staleUs: -1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /staleUs/,
  });
  t.throws(() => new QualityChecker({ spikeK: NaN }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /spikeK/,
  });
  t.throws(() => new QualityChecker({ qualityImmediateIntervalUs: Infinity }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /qualityImmediateIntervalUs/,
  });
  t.end();
});
