import fc from 'fast-check';
import t from 'tap';
import { MomentumStrategy } from '../../actors/momentum-strategy.js';
import { ErrorCodes } from '../../kernel/errors.js';

void t.test(
  'side from the threshold, strength = |score| clipped, qty = baseQty × strength',
  (t) => {
    fc.assert(
      fc.property(
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.double({ min: 0.1, max: 10, noNaN: true }),
        (score, baseQty) => {
          const s = new MomentumStrategy({ warmup: 0, emitEveryTick: true, baseQty });
          if (!s.evaluate(score, 0, 0, 1)) return false;
          const side = score > 0.2 ? 1 : score < -0.2 ? -1 : 0;
          const strength = Math.min(1, Math.abs(score));
          return (
            s.side === side &&
            s.strength === strength &&
            Math.abs(s.qty - baseQty * strength) < 1e-12
          );
        },
      ),
    );
    t.pass('property held');
    t.end();
  },
);

void t.test('no signal during warm-up or while quality is low', (t) => {
  const s = new MomentumStrategy({ warmup: 30, minQuality: 0.5 });
  t.notOk(s.evaluate(0.9, 0, 29, 1), 'warm-up');
  t.notOk(s.evaluate(0.9, 0, 30, 0.49), 'quality low');
  t.ok(s.evaluate(0.9, 0, 30, 0.5), 'warm and good');
  const e = new MomentumStrategy({ warmup: 5, emitEveryTick: true });
  t.notOk(e.evaluate(0.9, 0, 4, 1), 'emitEveryTick still waits for warm-up');
  t.end();
});

void t.test('throttling: side change or strength move, at most once per interval', (t) => {
  const s = new MomentumStrategy({ warmup: 0, minIntervalUs: 250_000, minStrengthChange: 0.1 });
  t.notOk(s.evaluate(0.1, 0, 1, 1), 'weak flat is not announced first');
  t.ok(s.evaluate(0.5, 1, 1, 1), 'first buy');
  t.notOk(s.evaluate(0.55, 300_000, 1, 1), 'same side, strength moved 0.05');
  t.notOk(s.evaluate(-0.5, 100_000, 1, 1), 'side changed but within the interval');
  t.ok(s.evaluate(-0.5, 250_001, 1, 1), 'side changed after the interval');
  t.ok(s.evaluate(-0.75, 600_000, 1, 1), 'strength moved 0.25');
  t.equal(s.side, -1);
  t.end();
});

void t.test(
  'random score streams: emissions are spaced by minIntervalUs and each is a change',
  (t) => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: -1, max: 1, noNaN: true }),
            fc.integer({ min: 0, max: 100_000 }),
          ),
          { maxLength: 300 },
        ),
        (steps) => {
          const s = new MomentumStrategy({ warmup: 0 });
          let ts = 0;
          let lastTs = -Infinity;
          let lastSide = 0;
          let lastStrength = 0;
          for (const [score, dt] of steps) {
            ts += dt;
            if (s.evaluate(score, ts, 100, 1)) {
              if (ts - lastTs < 250_000) return false;
              if (s.side === lastSide && Math.abs(s.strength - lastStrength) <= 0.1) return false;
              lastTs = ts;
              lastSide = s.side;
              lastStrength = s.strength;
            }
          }
          return true;
        },
      ),
    );
    t.pass('property held');
    t.end();
  },
);

void t.test('bad options are rejected naming the key', (t) => {
  t.throws(() => new MomentumStrategy({ threshold: 1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /threshold/,
  });
  t.throws(() => new MomentumStrategy({ baseQty: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /baseQty/,
  });
  t.throws(() => new MomentumStrategy({ warmup: -1 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /warmup/,
  });
  t.throws(() => new MomentumStrategy({ minQuality: 2 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /minQuality/,
  });
  t.end();
});
