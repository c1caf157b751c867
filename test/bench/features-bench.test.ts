/**
 * `qilin bench features` with tiny sizes: the report has its fields, the
 * naive set agrees with FeatureSet on windowed indicators, the CLI lists its
 * options and rejects bad values with QLN_CLI_USAGE (exit 2).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FULL_FEATURE_SPECS, FeatureSet } from '../../actors/indicators/index.js';
import {
  formatFeaturesReport,
  runFeaturesBench,
  writeFeaturesReport,
} from '../../bench/features/features-bench.js';
import { NaiveFeatureSet } from '../../bench/features/naive-feature-set.js';
import { repoRoot } from '../helpers/services.js';

void t.test('a tiny run reports every figure', (t) => {
  const r = runFeaturesBench({
    symbols: 20,
    ticks: 20_000,
    warmupTicks: 2_000,
    naiveTicks: 500,
    naiveSymbols: 2,
  });
  t.equal(r.scenario, 'features');
  t.equal(r.subject.ticks, 19_456); // whole 1,024-tick batches
  t.ok(r.subject.nsPerTick > 0 && Number.isFinite(r.subject.nsPerTick));
  t.equal(r.subject.batchNsPerTick.count, 19);
  t.ok(r.subject.batchNsPerTick.p99 >= r.subject.batchNsPerTick.p50);
  t.ok(r.naive.nsPerTick > 0);
  t.ok(r.ratio > 1, `naive / FeatureSet = ${r.ratio}`);
  t.ok(Number.isFinite(r.heap.growthMB));
  t.equal(typeof r.targets.nsPerTickUnder1us, 'boolean');
  t.equal(r.setup.outputs, 23);
  const text = formatFeaturesReport(r);
  t.match(text, /naive \/ FeatureSet: [\d.]+×/);
  t.match(text, /heap growth over/);
  const dir = mkdtempSync(join(tmpdir(), 'qilin-features-bench-'));
  try {
    const file = writeFeaturesReport(r, dir);
    t.match(file, /features-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.json$/);
    t.same(readdirSync(dir).length, 1);
    t.equal((JSON.parse(readFileSync(file, 'utf8')) as { ratio: number }).ratio, r.ratio);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

void t.test('the naive set computes the same windowed values as FeatureSet', (t) => {
  const fs = new FeatureSet(FULL_FEATURE_SPECS);
  const nv = new NaiveFeatureSet(FULL_FEATURE_SPECS);
  t.same(nv.names, fs.names);
  let p = 100;
  for (let i = 0; i < 300; i++) {
    p *= 1 + 0.001 * Math.sin(i * 1.7);
    fs.onTrade(p, 1 + (i % 7));
    nv.onTrade(p, 1 + (i % 7));
    fs.onQuote(p - 0.01, 3, p + 0.01, 4 + (i % 3));
    nv.onQuote(p - 0.01, 3, p + 0.01, 4 + (i % 3));
    if (i % 10 === 9) {
      fs.onBar(0, p * 1.001, p * 0.999, p);
      nv.onBar(0, p * 1.001, p * 0.999, p);
    }
  }
  // histories (≤ 1,024 values) still hold everything: every output agrees
  let n = 0;
  fs.names.forEach((name, i) => {
    const a = fs.values[i]!;
    const b = nv.values[i]!;
    t.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b)), `${name}: ${a} vs ${b}`);
    n++;
  });
  t.equal(n, 23);
  t.end();
});

void t.test('CLI: --help lists the options; bad values exit 2 with QLN_CLI_USAGE', (t) => {
  const run = (...args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, ['bin/qilin.js', 'bench', ...args], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const h = run('features', '--help');
  t.equal(h.code, 0);
  for (const o of [
    '--symbols',
    '--ticks',
    '--naive-ticks',
    '--naive-symbols',
    '--bar-every',
    '--json',
    '--no-write',
  ]) {
    t.match(h.stdout, o);
  }
  t.match(run('--help').stdout, /\n {2}features /);
  const bad = run('features', '--ticks', 'lots', '--no-write');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /QLN_CLI_USAGE/);
  t.match(bad.stderr, /--ticks/);
  t.end();
});
