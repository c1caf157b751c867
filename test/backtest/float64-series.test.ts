import t from 'tap';
import { Float64Series } from '../../backtest/float64-series.js';

void t.test('Float64Series: grows by doubling at the capacity boundary, keeps every value', (t) => {
  const s = new Float64Series(4);
  t.equal(s.length, 0);
  t.equal(s.last(-1), -1, 'empty: the fallback');
  for (let i = 0; i < 4; i++) s.push(i + 0.5);
  t.equal(s.length, 4, 'full at capacity 4');
  s.push(4.5); // the 5th value doubles the buffer
  t.equal(s.length, 5);
  t.same(Array.from(s.toArray()), [0.5, 1.5, 2.5, 3.5, 4.5]);
  t.equal(s.at(4), 4.5);
  t.equal(s.at(0), 0.5);
  t.equal(s.last(-1), 4.5);
  for (let i = 5; i < 1000; i++) s.push(i + 0.5);
  const a = s.toArray();
  t.equal(a.length, 1000, 'toArray is exactly length long');
  t.ok(
    a.every((v, i) => v === i + 0.5),
    'every value in order after 8 doublings',
  );
  a[0] = 99;
  t.equal(s.at(0), 0.5, 'toArray is a copy');
  t.equal(new Float64Series(0).last(7), 7, 'capacity 0 is raised to 1');
  t.end();
});
