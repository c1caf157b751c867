/**
 * Sweeps over worker threads (backtest/sweep.ts, sweep-worker.ts): the same
 * grid gives the same ranked results, bit for bit, with 1 and with 3
 * workers, and each point's report is the one `runBacktest` gives in
 * process for that point's options (trades included); a point the actor refuses is named
 * before any worker starts; an aborted sweep rejects and stops its workers.
 * Small markets: the whole file runs in a few seconds.
 */
import { pino } from 'pino';
import t from 'tap';
import { runBacktest } from '../../backtest/backtest-run.js';
import { gridPoint, parseSweep } from '../../backtest/sweep-grid.js';
import { pointOptions, runSweep, sweepId, type SweepOptions } from '../../backtest/sweep.js';

const log = pino({ level: 'silent' });

const options: SweepOptions = {
  base: {
    symbols: 3,
    messages: 2_000,
    seed: 11,
    stepUs: 1000,
    account: 'bt',
    risk: {},
    fill: { model: 'next-tick', feeBps: 1 },
    initialCash: 1_000_000,
    sampleIntervalUs: 500_000,
    codeVersion: 'test',
  },
  strategy: 'momentum',
  actor: {},
  params: { minIntervalUs: 0 },
  axes: [parseSweep('threshold=0.0002..0.0006:0.0004'), parseSweep('saturation=0.005..0.01:0.005')],
  log,
};

void t.test('the same grid gives the same ranked results with 1 and 3 workers', async (t) => {
  let progress = 0;
  const one = await runSweep({
    ...options,
    workers: 1,
    executions: true,
    onPoint: () => progress++,
  });
  // Three workers, lean (as the command line runs it): every point as it
  // arrives (onResult, before lean drops anything) must equal the
  // one-worker run's point, trades included, bit for bit.
  const arrived = new Map<number, string>();
  const three = await runSweep({
    ...options,
    workers: 3,
    executions: true,
    lean: true,
    onResult: (p) => arrived.set(p.index, JSON.stringify({ ...p, ms: 0 })),
  });
  t.equal(progress, 4, 'progress once per point');
  t.equal(one.workers, 1);
  t.equal(three.workers, 3);
  t.equal(one.points.length, 4, '2 × 2 points');
  t.same(
    one.points.map((p) => p.index).sort((a, b) => a - b),
    [0, 1, 2, 3],
    'every point once',
  );
  t.ok(
    one.points.every((p) => p.fills > 0),
    `fills at every point (${one.points.map((p) => p.fills).join(', ')})`,
  );
  t.ok(
    new Set(one.points.map((p) => p.report.total.pnl)).size > 1,
    'the parameters change the result',
  );
  t.equal(arrived.size, 4, 'onResult: every point');
  for (const p of one.points) {
    t.equal(
      arrived.get(p.index),
      JSON.stringify({ ...p, ms: 0 }),
      `point ${p.index}: identical with 1 and 3 workers, trades included`,
    );
  }
  t.same(
    three.points.map((p) => p.report.meta.id),
    one.points.map((p) => p.report.meta.id),
    'the same ranking',
  );
  t.same(three.points[0]!.report, one.points[0]!.report, "lean: the best point's report whole");
  t.same(
    three.points.map((p) => [p.executions, p.report.curve.ts.length > 0]),
    [
      [undefined, true],
      [undefined, false],
      [undefined, false],
      [undefined, false],
    ],
    "lean: executions dropped, only the best point's curve kept",
  );
  t.same(
    three.points.map((p) => p.report.total),
    one.points.map((p) => p.report.total),
    'lean: every TOTAL row kept',
  );
  // Ranked by Sharpe, best first, nulls last.
  const sharpe = one.points.map((p) => p.report.total.sharpe);
  for (let i = 1; i < sharpe.length; i++) {
    const [a, b] = [sharpe[i - 1]!, sharpe[i]!];
    t.ok(a === null ? b === null : b === null || a >= b, `rank ${i}: ${a} before ${b}`);
  }
  t.equal(one.id, sweepId(options), 'the id is a hash of the sweep, not of the workers');
  t.equal(three.id, one.id);
  t.match(one.points[0]!.report.meta.id, new RegExp(`^${one.id}-\\d$`));
  t.match(one.points[0]!.report.meta.config, { sweep: { id: one.id, points: 4 } });

  // Each point's report is runBacktest's for its options, in process.
  for (const p of one.points) {
    const direct = runBacktest(pointOptions(options, gridPoint(options.axes, p.index)));
    t.equal(p.fills, direct.fills, `point ${p.index}: fills`);
    t.equal(p.executions?.length, direct.executions.length, `point ${p.index}: executions`);
    t.equal(
      JSON.stringify({ ...p.report, meta: null }),
      JSON.stringify({ ...direct.report, meta: null }),
      `point ${p.index}: the same report`,
    );
  }
});

void t.test('a point the actor refuses is named before any worker starts', async (t) => {
  await t.rejects(runSweep({ ...options, axes: [parseSweep('volFloor=0..2:1')] }), {
    code: 'QLN_CLI_USAGE',
    message: /grid point 0 \(volFloor=0\): invalid volFloor/,
  });
  await t.rejects(runSweep({ ...options, params: { threshold: 1 } }), {
    code: 'QLN_CLI_USAGE',
    message: /a key not also set by --param/,
  });
});

void t.test('a point that fails in its worker stops the sweep, named', async (t) => {
  await t.rejects(runSweep({ ...options, base: { ...options.base, messages: 0 }, workers: 1 }), {
    code: 'QLN_BACKTEST_SWEEP_FAILED',
    message:
      /^grid point \d \(threshold=0\.000\d saturation=0\.0\d+\) failed: QLN_INVALID_ARGUMENT: invalid messages: 0/,
  });
});

void t.test('an aborted sweep rejects with QLN_BACKTEST_SWEEP_FAILED', async (t) => {
  const ac = new AbortController();
  let done = 0;
  const run = runSweep({
    ...options,
    workers: 1,
    signal: ac.signal,
    onPoint: (d) => {
      done = d;
      if (d === 2) ac.abort();
    },
  });
  await t.rejects(run, {
    code: 'QLN_BACKTEST_SWEEP_FAILED',
    message: /cancelled after 2 of 4 points/,
  });
  t.equal(done, 2, 'no point reported after the abort');
});
