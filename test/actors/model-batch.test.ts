/**
 * ModelBatch (actors/model-batch.ts) against a scripted scorer: every staged
 * row answered exactly once and in staging order whatever the batch
 * boundaries (fast-check), scores mapped onto the strategy's scale, and each
 * fault (error, NaN, slow) answered by the fallback chain and counted.
 */
import fc from 'fast-check';
import t from 'tap';
import {
  ModelBatch,
  ModelStep,
  populationStability,
  type BatchMember,
  type BatchModel,
  type SyncScorer,
} from '../../actors/model-batch.js';

/** A scorer whose score for a row is its first input × 0.1 (or whatever `fn` says). */
class FakeScorer implements SyncScorer {
  readonly input: Float32Array;
  readonly output: Float32Array;
  runs: number[] = [];
  released = false;
  fail: 'none' | 'throw' | 'nan' = 'none';
  constructor(
    readonly maxBatch: number,
    readonly features = 1,
    readonly outputs = 1,
  ) {
    this.input = new Float32Array(maxBatch * features);
    this.output = new Float32Array(maxBatch * outputs);
  }
  runSync(n: number): Float32Array {
    this.runs.push(n);
    if (this.fail === 'throw') throw new Error('boom');
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < this.outputs; k++) {
        this.output[r * this.outputs + k] =
          this.fail === 'nan' ? Number.NaN : this.input[r * this.features]! + k;
      }
    }
    return this.output;
  }
  release(): Promise<void> {
    this.released = true;
    return Promise.resolve();
  }
}

function model(id: number, scorer: SyncScorer, over: Partial<BatchModel> = {}): BatchModel {
  return {
    id,
    label: `m@${id}`,
    scorer,
    index: Int32Array.from([0]),
    scoreCol: 0,
    lowerCol: -1,
    upperCol: -1,
    // Identity mapping at threshold 0.5: buy 0.5 → +0.5, sell −0.5 → −0.5.
    buy: 0.5,
    sell: -0.5,
    ...over,
  };
}

interface Answer {
  member: number;
  value: number;
  score: number;
  model: number;
  shadow?: boolean;
}

/** A member whose feature is `value`; answers go to `log`. */
function member(id: number, log: Answer[], value = id / 100): BatchMember & { value: number } {
  const m = {
    value,
    fillRow(dst: Float32Array, at: number, index: Int32Array): boolean {
      if (index.length !== 1) throw new Error('one feature');
      dst[at] = m.value;
      return Number.isFinite(m.value);
    },
    complete(score: number, _lo: number, _hi: number, modelId: number): void {
      log.push({ member: id, value: m.value, score, model: modelId });
    },
    shadow(score: number, _lo: number, _hi: number, modelId: number): void {
      log.push({ member: id, value: m.value, score, model: modelId, shadow: true });
    },
    ruleScore: () => -0.25,
  };
  return m;
}

void t.test('every staged row is answered once, in staging order, whatever the batches', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('stage' as const), m: fc.integer({ min: 0, max: 5 }) }),
          fc.record({ op: fc.constant('flush' as const) }),
        ),
        { maxLength: 200 },
      ),
      (maxBatch, ops) => {
        const log: Answer[] = [];
        const scorer = new FakeScorer(maxBatch);
        const b = new ModelBatch({ threshold: 0.5 });
        b.setLive(model(1, scorer));
        const members = Array.from({ length: 6 }, (_, i) => member(i, log));
        const staged: number[] = [];
        const values: number[] = [];
        let tick = 0;
        for (const o of ops) {
          if (o.op === 'flush') b.flush();
          else {
            // An actor with a staged row is completed before its next tick (SymbolActor does this).
            if (log.length < staged.length && staged.slice(log.length).includes(o.m)) b.flush();
            const m = members[o.m]!;
            m.value = (tick++ % 90) / 100;
            staged.push(o.m);
            values.push(m.value);
            b.stage(m);
          }
        }
        b.flush();
        void b.close();
        // Exactly once each, in order, each with its own row's score.
        if (log.length !== staged.length) return false;
        for (let i = 0; i < log.length; i++) {
          if (log[i]!.member !== staged[i]) return false;
          if (Math.abs(log[i]!.score - Math.fround(values[i]!)) > 1e-6) return false;
          if (log[i]!.model !== 1) return false;
        }
        // No run bigger than maxBatch, rows scored = rows staged.
        return (
          scorer.runs.every((n) => n >= 1 && n <= maxBatch) &&
          scorer.runs.reduce((a, n) => a + n, 0) === staged.length
        );
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

void t.test('without a model nothing is staged: the actor scores itself', (t) => {
  const b = new ModelBatch({ threshold: 0.3 });
  const log: Answer[] = [];
  t.equal(b.stage(member(1, log)), false);
  t.equal(log.length, 0);
  t.equal(b.active, false);
  t.equal(b.currentStep, ModelStep.NONE);
  t.end();
});

void t.test('mapScore: manifest thresholds onto the strategy threshold, clamped', (t) => {
  const b = new ModelBatch({ threshold: 0.3 });
  const m = { buy: 0.6, sell: 0.4 };
  t.equal(b.mapScore(0.6, m), 0.3, 'buy threshold → +threshold');
  t.ok(Math.abs(b.mapScore(0.4, m) + 0.3) < 1e-12, 'sell threshold → −threshold');
  t.equal(b.mapScore(0.5, m), 0, 'midpoint → 0');
  t.equal(b.mapScore(0.99, m), 1, 'clamped');
  t.ok(Number.isNaN(b.mapScore(Number.NaN, m)));
  t.equal(b.mapScore(0.7, { buy: 0.5, sell: 0.5 }), 1, 'one threshold: a sign');
  fc.assert(
    fc.property(
      fc.double({ min: -10, max: 10, noNaN: true }),
      fc.double({ min: -10, max: 10, noNaN: true }),
      fc.double({ min: 0.01, max: 5, noNaN: true }),
      (raw, sell, gap) => {
        const mm = { buy: sell + gap, sell };
        const s = b.mapScore(raw, mm);
        // In range, and trades (|s| > threshold) exactly beyond the manifest's thresholds.
        return (
          s >= -1 &&
          s <= 1 &&
          (raw > mm.buy + 1e-9 ? s > 0.3 - 1e-9 : true) &&
          (raw < mm.sell - 1e-9 ? s < -0.3 + 1e-9 : true) &&
          (raw > mm.sell + 1e-9 && raw < mm.buy - 1e-9 ? Math.abs(s) < 0.3 + 1e-9 : true)
        );
      },
    ),
  );
  t.end();
});

void t.test(
  'a failing batch: its rows get the rule score, counted; the breaker opens onto the previous version, then the rule',
  async (t) => {
    const steps: number[] = [];
    const b = new ModelBatch({
      threshold: 0.5,
      volumeThreshold: 2,
      resetMs: 60_000,
      onStep: (s) => steps.push(s),
    });
    const prevScorer = new FakeScorer(4);
    const liveScorer = new FakeScorer(4);
    b.setLive(model(1, prevScorer));
    b.setLive(model(2, liveScorer));
    t.equal(b.previousId, 1);
    const log: Answer[] = [];
    liveScorer.fail = 'throw';
    b.stage(member(1, log, 0.2));
    b.flush();
    t.same(
      log,
      [{ member: 1, value: 0.2, score: -0.25, model: 0 }],
      'rule score, built-in model id',
    );
    t.equal(b.stats.errors, 1);
    t.equal(b.stats.ruleRows, 1);
    liveScorer.fail = 'nan';
    b.stage(member(2, log, 0.2));
    b.flush();
    t.equal(b.stats.nonFinite, 1);
    t.equal(log[1]!.score, -0.25, 'a NaN score never reaches the strategy');
    // Two failed batches of two: the breaker opens (asynchronously, a microtask later).
    await new Promise<void>((r) => setImmediate(r));
    t.equal(b.currentStep, ModelStep.PREVIOUS, 'open: previous version');
    t.equal(b.stats.opened, 1);
    b.stage(member(3, log, 0.3));
    b.flush();
    t.same(
      log[2],
      { member: 3, value: 0.3, score: Math.fround(0.3), model: 1 },
      'scored by version 1',
    );
    t.equal(b.stats.previousRows, 1);
    t.ok(liveScorer.runs.length === 2, 'the open breaker keeps the live model idle');
    // Without a previous version the chain ends at the rule, or at no signal.
    const lone = new ModelBatch({ threshold: 0.5, volumeThreshold: 1, lastResort: 'none' });
    const s = new FakeScorer(2);
    s.fail = 'throw';
    lone.setLive(model(7, s));
    const log2: Answer[] = [];
    lone.stage(member(1, log2));
    lone.flush();
    await new Promise<void>((r) => setImmediate(r));
    t.equal(lone.currentStep, ModelStep.NO_SIGNAL);
    lone.stage(member(2, log2));
    t.equal(log2.length, 2);
    t.ok(Number.isNaN(log2[1]!.score), 'no signal: no score at all');
    t.equal(lone.stats.noSignalRows, 2);
    await b.close();
    await lone.close();
    t.ok(liveScorer.released && prevScorer.released, 'close releases both sessions');
  },
);

void t.test(
  'a slow batch counts against the breaker but its scores are used; recovery closes it',
  async (t) => {
    let now = 0;
    const scorer = new FakeScorer(4);
    const run = scorer.runSync.bind(scorer);
    let slow = true;
    scorer.runSync = (n) => {
      now += slow ? 10_000 : 10;
      return run(n);
    };
    const b = new ModelBatch({
      threshold: 0.5,
      budgetUs: 1000,
      volumeThreshold: 2,
      resetMs: 20,
      nowUs: () => now,
    });
    b.setLive(model(3, scorer));
    const log: Answer[] = [];
    for (let i = 0; i < 2; i++) {
      b.stage(member(i, log, 0.1));
      b.flush();
    }
    t.equal(b.stats.slow, 2);
    t.same(
      log.map((a) => a.model),
      [3, 3],
      'slow scores are still the model’s',
    );
    await new Promise<void>((r) => setImmediate(r));
    t.equal(b.currentStep, ModelStep.RULE, 'open, nothing before it: the rule');
    b.stage(member(5, log, 0.1));
    t.equal(log.at(-1)!.model, 0, 'while open: the rule, at once');
    // After resetMs the breaker half-opens: a good trial batch closes it.
    await new Promise<void>((r) => setTimeout(r, 40));
    slow = false;
    b.stage(member(6, log, 0.1));
    b.flush();
    await new Promise<void>((r) => setImmediate(r));
    t.equal(b.currentStep, ModelStep.LIVE, 'recovered');
    t.equal(log.at(-1)!.model, 3);
    await b.close();
  },
);

void t.test('swaps happen between batches; cold rows are answered without a run', async (t) => {
  const a = new FakeScorer(8);
  const c = new FakeScorer(8);
  const b = new ModelBatch({ threshold: 0.5 });
  b.setLive(model(1, a));
  const log: Answer[] = [];
  b.stage(member(1, log, 0.1));
  b.stage(member(2, log, 0.2));
  const dropped = b.setLive(model(2, c));
  t.equal(dropped, undefined, 'nothing to release yet (1 becomes the previous)');
  t.same(
    log.map((x) => x.model),
    [1, 1],
    'rows staged before the swap are scored by the version they were staged for',
  );
  b.stage(member(3, log, Number.NaN));
  t.ok(Number.isNaN(log[2]!.score), 'a cold row (NaN feature) gets no score');
  t.equal(b.stats.coldRows, 1);
  t.same(c.runs, [], 'and no run');
  const released = b.setLive(model(3, new FakeScorer(8)));
  t.equal(released?.id, 1, 'the version two swaps back is handed back for release');
  t.equal(b.restorePrevious()?.id, 3, 'rollback: 2 is live again, 3 handed back');
  t.equal(b.liveId, 2);
  await b.close();
});

void t.test(
  'a shadow scores the same rows, never instead of the live one; agreement counted',
  async (t) => {
    const live = new FakeScorer(8);
    const cand = new FakeScorer(8);
    const b = new ModelBatch({ threshold: 0.5 });
    b.setLive(model(1, live));
    // Shadow: score = −feature (weights flipped by its mapping: buy/sell swapped).
    b.setShadow(model(2, cand, { buy: -0.5, sell: 0.5 }));
    t.equal(b.shadowId, 2);
    const log: Answer[] = [];
    b.stage(member(1, log, 0.8));
    b.stage(member(2, log, 0.9));
    b.stage(member(3, log, Number.NaN)); // cold: neither answers with a score
    b.flush();
    t.same(
      log.map((a) => [a.member, a.model, a.shadow === true]),
      [
        [3, 1, false],
        [1, 1, false],
        [1, 2, true],
        [2, 1, false],
        [2, 2, true],
      ],
      'each live answer, then its shadow answer; the cold row gets no shadow',
    );
    t.same(live.runs, [2]);
    t.same(cand.runs, [2], 'the shadow ran once, on the same batch');
    t.equal(b.stats.shadowRows, 2);
    t.equal(b.stats.shadowAgree, 0, 'opposite sides');
    cand.fail = 'throw';
    b.stage(member(4, log, 0.7));
    b.flush();
    t.equal(b.stats.shadowFailed, 1);
    t.equal(log.at(-1)!.shadow, undefined, 'a failing shadow leaves the live answer alone');
    t.equal(log.at(-1)!.model, 1);
    t.equal(b.stats.failedBatches, 0, 'and does not count against the live breaker');
    const old = b.setShadow(undefined);
    t.equal(old?.id, 2, 'handed back for release');
    await b.close();
  },
);

void t.test(
  'drift: PSI against the reference; a drifted version fails its batches until a fresh window',
  async (t) => {
    t.ok(populationStability([10, 10, 10, 10], 40) < 1e-12, 'the expected shares: PSI 0');
    t.ok(populationStability([40, 0, 0, 0], 40) > 1, 'everything in one bin: PSI large');
    // Score = the row's feature; reference deciles of a uniform [0, 1) score.
    const edges = Float64Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    const run = async (values: (i: number) => number): Promise<ModelBatch> => {
      const b = new ModelBatch({
        threshold: 0.5,
        driftRows: 200,
        volumeThreshold: 5,
        resetMs: 60_000,
      });
      b.setLive(model(1, new FakeScorer(8), { edges, buy: 0.6, sell: 0.4 }));
      const log: Answer[] = [];
      for (let i = 0; i < 400; i++) {
        b.stage(member(i % 8, log, values(i)));
        if (i % 8 === 7) b.flush();
        if (i % 40 === 39) await new Promise<void>((r) => setImmediate(r));
      }
      b.flush();
      await new Promise<void>((r) => setImmediate(r));
      return b;
    };
    const steady = await run((i) => ((i * 7919) % 1000) / 1000);
    t.ok(
      steady.stats.lastPsi >= 0 && steady.stats.lastPsi < 0.1,
      `like the reference: PSI ${steady.stats.lastPsi}`,
    );
    t.equal(steady.stats.driftWindows, 0);
    t.equal(steady.currentStep, ModelStep.LIVE);
    const shifted = await run(() => 0.97);
    t.ok(shifted.stats.lastPsi > 0.25, `all in the top decile: PSI ${shifted.stats.lastPsi}`);
    t.ok(shifted.stats.driftWindows >= 1);
    t.ok(
      shifted.stats.failedBatches >= 5,
      `${shifted.stats.failedBatches} batches failed as drifted`,
    );
    t.equal(shifted.currentStep, ModelStep.RULE, 'breaker open: nothing before it, the rule');
    t.match(shifted.lastFault, /drift, PSI/);
    await steady.close();
    await shifted.close();
  },
);
