import fc from 'fast-check';
import t from 'tap';
import {
  Portfolio,
  resolvePortfolioOptions,
  strategyOf,
  type PortfolioFill,
} from '../../backtest/portfolio.js';
import { RiskActor } from '../../actors/risk-actor.js';
import { ErrorCodes } from '../../kernel/errors.js';

const near = (a: number, b: number, eps = 1e-9): boolean =>
  Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));

function fill(over: Partial<PortfolioFill> = {}): PortfolioFill {
  return { signalId: 'mom:A:1', sym: 'A', side: 'buy', qty: 1, px: 100, ts: 1, ...over };
}

void t.test('options: defaults and each bad value named', (t) => {
  t.same(resolvePortfolioOptions().accounts, ['backtest']);
  for (const [raw, key] of [
    [{ accounts: [] }, 'portfolio.accounts'],
    [{ accounts: ['a', 'a'] }, 'portfolio.accounts'],
    [{ accounts: ['a.b'] }, 'portfolio.accounts'],
    [{ initialCash: 0 }, 'portfolio.initialCash'],
    [{ sampleIntervalUs: 1.5 }, 'portfolio.sampleIntervalUs'],
    [{ groupSeries: { symbols: true } }, 'portfolio.groupSeries'],
    [{ keepExecutions: 'yes' }, 'portfolio.keepExecutions'],
  ] as const) {
    t.throws(() => resolvePortfolioOptions(raw as never), {
      code: ErrorCodes.INVALID_ARGUMENT,
      message: new RegExp(key.replace('.', '\\.')),
    });
  }
  t.end();
});

void t.test('hand-computed: average cost, partial close, flip, fees, marks, samples', (t) => {
  const p = new Portfolio({ initialCash: 1_000_000, sampleIntervalUs: 10 });
  p.mark('A', 100, 5);
  p.onFill(fill({ side: 'buy', qty: 10, px: 100, fee: 1, ts: 6 }));
  t.equal(p.cashOf(), 998_999);
  t.equal(p.equity(), 999_999);
  p.mark('A', 110, 12);
  t.equal(p.equity(), 1_000_099);
  t.same(p.pnl(), { realised: 0, unrealised: 100, fees: 1 });
  p.onFill(fill({ side: 'sell', qty: 4, px: 120, fee: 1, ts: 13 }));
  t.equal(p.cashOf(), 999_478);
  t.equal(p.position('A'), 6);
  t.equal(p.markOf('A'), 110, 'a fill does not move the mark');
  t.same(p.pnl(), { realised: 80, unrealised: 60, fees: 2 });
  t.equal(p.equity(), 1_000_138);
  // Flip: closes 6 long at 90 (−60), opens 4 short at 90.
  p.onFill(fill({ side: 'sell', qty: 10, px: 90, fee: 2, ts: 25 }));
  t.equal(p.position('A'), -4);
  t.same(p.pnl(), { realised: 20, unrealised: -80, fees: 4 });
  t.equal(p.equity(), 999_936);
  p.mark('A', 95, 31);
  t.equal(p.equity(), 999_996);
  p.onFill(fill({ side: 'buy', qty: 4, px: 95, ts: 32 }));
  t.equal(p.position('A'), 0);
  t.same(p.pnl(), { realised: 0, unrealised: 0, fees: 4 });
  p.finish(40);
  const r = p.result();
  t.same(Array.from(r.sampleTs), [0, 10, 20, 30, 40]);
  t.same(Array.from(r.total.equity!), [1_000_000, 999_999, 1_000_138, 999_936, 999_996]);
  t.equal(r.roundTrips.length, 2);
  t.match(r.roundTrips[0], {
    side: 'long',
    openTs: 6,
    closeTs: 25,
    maxQty: 10,
    gross: 20,
    strategy: 'mom',
  });
  t.ok(near(r.roundTrips[0]!.fees, 3.2), 'long trip fees: 1 + 1 + 6/10 of 2');
  t.ok(near(r.roundTrips[0]!.pnl, 16.8));
  t.match(r.roundTrips[1], { side: 'short', openTs: 25, closeTs: 32, maxQty: 4, gross: -20 });
  t.ok(near(r.roundTrips[1]!.fees, 0.8), 'short trip: the other 4/10 of the flip fee');
  t.equal(r.total.exposureUs, 26, 'open from 6 to 32');
  t.equal(r.startTs, 5);
  t.equal(r.endTs, 40);
  t.equal(r.total.fills, 4);
  t.equal(r.total.turnoverNotional, 1000 + 480 + 900 + 380);
  t.same(
    r.executions.map((e) => [e.seq, e.side, e.qty, e.realised, e.position]),
    [
      [0, 'buy', 10, 0, 10],
      [1, 'sell', 4, 80, 6],
      [2, 'sell', 10, -60, -4],
      [3, 'buy', 4, -20, 0],
    ],
  );
  const sym = r.groups.find((g) => g.kind === 'symbol' && g.name === 'A')!;
  t.same(
    Array.from(sym.equity!),
    [1_000_000, 999_999, 1_000_138, 999_936, 999_996],
    'one symbol: its curve is the account',
  );
  t.end();
});

void t.test(
  'samples: empty intervals repeat the last equity; a symbol seen late is back-filled',
  (t) => {
    const p = new Portfolio({ initialCash: 100, sampleIntervalUs: 10 });
    p.mark('A', 10, 3);
    p.onFill(fill({ sym: 'A', qty: 1, px: 10, ts: 4 }));
    p.mark('A', 12, 47); // crosses 10, 20, 30, 40
    p.onFill(fill({ sym: 'B', signalId: 'rsi:B:9', qty: 1, px: 5, ts: 48 }));
    p.mark('B', 6, 55);
    p.finish(57);
    const r = p.result();
    t.same(Array.from(r.sampleTs), [0, 10, 20, 30, 40, 50, 57]);
    t.same(Array.from(r.total.equity!), [100, 100, 100, 100, 100, 102, 103]);
    const b = r.groups.find((g) => g.kind === 'symbol' && g.name === 'B')!;
    t.same(Array.from(b.equity!), [100, 100, 100, 100, 100, 100, 101]);
    const rsi = r.groups.find((g) => g.kind === 'strategy' && g.name === 'rsi')!;
    t.same(
      Array.from(rsi.equity!),
      [100, 100, 100, 100, 100, 100, 101],
      'strategy from the signal id',
    );
    t.end();
  },
);

void t.test('group series can be turned off', (t) => {
  const p = new Portfolio({
    groupSeries: { symbols: false, strategies: true },
    keepExecutions: false,
  });
  p.onFill(fill());
  p.finish(100_000_000);
  const r = p.result();
  t.equal(r.groups.find((g) => g.kind === 'symbol')!.equity, null);
  t.ok(r.groups.find((g) => g.kind === 'strategy')!.equity);
  t.equal(r.executions.length, 0);
  t.end();
});

void t.test('bad fills: coded error, counted, nothing booked', (t) => {
  const p = new Portfolio({ accounts: ['x'] });
  for (const bad of [
    fill({ account: 'nope' }),
    fill({ side: 'flat' as never }),
    fill({ qty: -1 }),
    fill({ qty: Number.NaN }),
    fill({ px: 0 }),
    fill({ fee: -1 }),
    fill({ ts: Number.POSITIVE_INFINITY }),
    fill({ sym: '' }),
  ]) {
    t.throws(() => p.onFill(bad), { code: ErrorCodes.BACKTEST_FILL_INVALID });
  }
  t.equal(p.rejectedFills, 8);
  t.equal(p.cashOf('x'), 1_000_000);
  t.equal(p.result().total.fills, 0);
  p.mark('A', Number.NaN, 1);
  p.mark('A', 10, Number.NaN);
  t.equal(p.rejectedMarks, 2, 'a mark that is not a price or a time is counted');
  t.equal(p.result().sampleTs.length, 0, 'and starts no series');
  t.throws(() => p.cashOf('y'), { code: ErrorCodes.INVALID_ARGUMENT });
  t.end();
});

void t.test('strategyOf reads the kernel signal id', (t) => {
  t.equal(strategyOf('maCross:BTC-USD:42'), 'maCross');
  t.equal(strategyOf('plain'), 'unknown');
  t.equal(strategyOf(':x'), 'unknown');
  t.end();
});

type Op =
  | { op: 'mark'; sym: string; px: number; dt: number }
  | {
      op: 'fill';
      sym: string;
      acc: string;
      strat: string;
      side: 'buy' | 'sell';
      qty: number;
      px: number;
      fee: number;
      dt: number;
    };

const SYMS = ['A', 'B', 'C'];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('mark' as const),
    sym: fc.constantFrom(...SYMS),
    px: fc.double({ min: 0.5, max: 500, noNaN: true }),
    dt: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({
    op: fc.constant('fill' as const),
    sym: fc.constantFrom(...SYMS),
    acc: fc.constantFrom('x', 'y'),
    strat: fc.constantFrom('s1', 's2'),
    side: fc.constantFrom('buy' as const, 'sell' as const),
    qty: fc.oneof(fc.double({ min: 0, max: 50, noNaN: true }), fc.integer({ min: 1, max: 5 })),
    px: fc.double({ min: 0.5, max: 500, noNaN: true }),
    fee: fc.double({ min: 0, max: 3, noNaN: true }),
    dt: fc.integer({ min: 0, max: 30 }),
  }),
);

void t.test(
  'property: cash + Σ position × mark == initial + realised + unrealised − fees, at every step',
  (t) => {
    let runs = 0;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const p = new Portfolio({
          accounts: ['x', 'y'],
          initialCash: 10_000,
          sampleIntervalUs: 25,
        });
        // The risk actor takes the very same fill objects, as it takes fill.<account>.
        const risk = { x: new RiskActor(), y: new RiskActor() };
        let ts = 0;
        for (const o of ops) {
          ts += o.dt;
          if (o.op === 'mark') p.mark(o.sym, o.px, ts);
          else {
            const f: PortfolioFill = {
              signalId: `${o.strat}:${o.sym}:${ts}`,
              sym: o.sym,
              side: o.side,
              qty: o.qty,
              px: o.px,
              ts,
              account: o.acc,
              fee: o.fee,
            };
            p.onFill(f);
            risk[o.acc as 'x' | 'y'].onFill(f);
          }
          for (const acc of ['x', 'y', undefined]) {
            const e = p.equity(acc);
            const { realised, unrealised, fees } = p.pnl(acc);
            const init = acc === undefined ? 20_000 : 10_000;
            const other = init + realised + unrealised - fees;
            const scale = 1e-9 * (init + 1e5);
            if (Math.abs(e - other) > scale)
              throw new Error(`equity ${e} != ${other} (${acc ?? 'total'})`);
          }
          for (const acc of ['x', 'y'] as const) {
            for (const sym of SYMS) {
              const want = risk[acc].positions().get(sym) ?? 0;
              if (Math.abs(p.position(sym, acc) - want) > 1e-9 * (1 + Math.abs(want))) {
                throw new Error(
                  `position ${acc}/${sym}: ${p.position(sym, acc)} != risk actor's ${want}`,
                );
              }
            }
          }
        }
        p.finish(ts + 1);
        const r = p.result();
        const eq = r.total.equity!;
        if (eq.length !== r.sampleTs.length) throw new Error('series length');
        if (!near(eq[eq.length - 1]!, p.equity(), 1e-12))
          throw new Error('last sample is the final equity');
        const accs = r.groups.filter((g) => g.kind === 'account');
        for (let i = 0; i < eq.length; i++) {
          const sum = accs.reduce((s, g) => s + g.equity![i]!, 0);
          if (!near(sum, eq[i]!, 1e-12))
            throw new Error('accounts sum to the total at each sample');
        }
        // Per-symbol and per-strategy curves add up to the total PnL.
        for (const kind of ['symbol', 'strategy'] as const) {
          const gs = r.groups.filter((g) => g.kind === kind);
          const pnl = gs.reduce((s, g) => s + g.equity![eq.length - 1]! - g.initial, 0);
          if (Math.abs(pnl - (eq[eq.length - 1]! - 20_000)) > 1e-6)
            throw new Error(`${kind} PnL sums to the total`);
        }
        runs++;
        return true;
      }),
      { numRuns: 200 },
    );
    t.equal(runs, 200, 'every random fill sequence checked');
    t.end();
  },
);
