import fc from 'fast-check';
import t from 'tap';
import { BaselineModel } from '../../actors/baseline-model.js';
import { Features } from '../../actors/features.js';
import { ErrorCodes } from '../../kernel/errors.js';

const series = fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), {
  minLength: 0,
  maxLength: 100,
});

void t.test('score is deterministic, finite and within [-1, 1]', (t) => {
  fc.assert(
    fc.property(series, (steps) => {
      const m = new BaselineModel();
      const f = new Features();
      let px = 100;
      f.onTrade(px);
      for (const s of steps) {
        px *= Math.exp(s);
        f.onTrade(px);
        const a = m.predict(f);
        const b = new BaselineModel().predict(f);
        if (!(a >= -1 && a <= 1) || a !== b) return false;
      }
      return true;
    }),
  );
  t.equal(new BaselineModel().predict(new Features()), 0, 'no trade yet: 0');
  t.end();
});

void t.test('rising prices score positive, falling negative', (t) => {
  for (const dir of [1, -1]) {
    const f = new Features();
    const m = new BaselineModel();
    let px = 100;
    for (let i = 0; i < 60; i++) {
      px *= Math.exp(dir * 0.001 * (1 + 0.3 * Math.sin(i)));
      f.onTrade(px);
    }
    const s = m.predict(f);
    t.ok(dir * s > 0.5, `direction ${dir}: score ${s}`);
  }
  t.end();
});

void t.test('name, version and option validation', (t) => {
  const m = new BaselineModel();
  t.equal(m.name, 'baseline');
  t.equal(m.version, '1');
  t.throws(() => new BaselineModel({ volFloor: 0 }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /volFloor/,
  });
  t.throws(() => new BaselineModel({ trendWeight: NaN }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /trendWeight/,
  });
  t.throws(() => new BaselineModel({ zWeight: Infinity }), {
    code: ErrorCodes.INVALID_ARGUMENT,
    message: /zWeight/,
  });
  t.end();
});
