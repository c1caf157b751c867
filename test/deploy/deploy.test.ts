/**
 * deploy/ checked statically (no Docker engine, no Prometheus server, no
 * Kubernetes here): every YAML and JSON file parses; compose passes
 * `docker-compose config`; the Prometheus config and alert rules pass
 * `promtool check` and their unit tests; and the files agree with the code:
 * environment variables the config reads, the default HTTP port, the routes
 * the kernel serves, the metric names it exports, the NATS partition mapping
 * and the error codes of docs/operations.md. Kubernetes: k8s.test.ts.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { KernelMetrics, type KernelMetricSources } from '../../cli/kernel-metrics.js';
import { KERNEL_HTTP_ROUTES } from '../../cli/kernel-app.js';
import { ConfigSchema, envName, loadConfig } from '../../config/config.js';
import { RejectReasons } from '../../kernel/market-source.js';
import { parsePartitionSet } from '../../kernel/partition-set.js';
import { marketMapping } from '../../ops/services/nats-config.js';
import {
  DEPLOY_DIR,
  MISSING_TOOL,
  filesUnder,
  isObject,
  rel,
  repoRoot,
  run,
  which,
  yamlDoc,
  yamlDocs,
  type Doc,
} from './deploy-files.js';

const PROM_DIR = join(DEPLOY_DIR, 'prometheus');
const COMPOSE = join(DEPLOY_DIR, 'compose.yaml');
const DASHBOARD = join(DEPLOY_DIR, 'grafana/dashboards/qilin-kernel.json');
const OPERATIONS = join(repoRoot, 'docs/operations.md');
const DEPLOY_README = join(DEPLOY_DIR, 'README.md');

/** Every environment variable the configuration reads (config/config.ts). */
const CONFIG_ENV = new Set([
  'QILIN_CONFIG',
  ...Object.keys(ConfigSchema.shape).map((k) => envName(k)),
]);
const DEFAULT_HTTP_PORT = ConfigSchema.shape.httpPort.parse(undefined);
const DEFAULT_NATS_PARTITIONS = ConfigSchema.shape.natsPartitions.parse(undefined);

/** A metrics source with nothing running: enough to list the registry's names. */
const idleSources: KernelMetricSources = {
  shards: () => [],
  pipeline: () => ({
    predictions: 0,
    quality: 0,
    qualityEvents: {},
    qualityIssues: {},
    signals: 0,
    approved: 0,
    rejected: {},
  }),
  episodes: () => new Map(),
  sourceEvents: () => new Map(),
  breakerState: () => 'closed',
  wsClients: () => 0,
  store: () => ({ lagMs: 0, spilledRows: 0, storeUp: true }),
  killed: () => false,
  feedDropped: () => 0,
  mainLoopLagMs: () => 0,
};

async function registryNames(): Promise<Set<string>> {
  const m = new KernelMetrics(idleSources);
  try {
    return new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
  } finally {
    m.close();
  }
}

/** Series names in a PromQL expression: qilin_*, process_*, nodejs_* and up. */
function seriesIn(expr: string): string[] {
  const names = expr.match(/\b(?:qilin|process|nodejs)_[a-z0-9_]+|\bup\b(?=\{)/g) ?? [];
  return [...new Set(names)];
}

/** The metric a series belongs to: histogram series carry _bucket, _sum, _count. */
function metricOf(series: string, names: Set<string>): string | undefined {
  if (names.has(series)) return series;
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return names.has(base) ? base : undefined;
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const doc = yamlDoc(join(PROM_DIR, 'alerts.yml'));
  const out: AlertRule[] = [];
  for (const g of doc['groups'] as Doc[]) {
    for (const r of g['rules'] as Doc[]) out.push(r as unknown as AlertRule);
  }
  return out;
}

/** Every PromQL expression of the Grafana dashboard's Prometheus panels. */
function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Doc;
  const out: string[] = [];
  for (const p of dash['panels'] as Doc[]) {
    for (const target of (p['targets'] as Doc[] | undefined) ?? []) {
      if (typeof target['expr'] === 'string') out.push(target['expr']);
    }
  }
  return out;
}

/** GitHub's heading anchors of a markdown file. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return out;
}

/** Rows of the markdown table that follows `heading`: cells, trimmed. */
function tableAfter(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(heading);
  if (start < 0) throw new Error(`no ${heading}`);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of markdown.slice(start).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      inTable = true;
      const cells = line.split('|').slice(1, -1);
      if (cells.every((c) => /^\s*:?-+:?\s*$/.test(c))) continue;
      rows.push(cells.map((c) => c.trim()));
    } else if (inTable) break;
  }
  return rows;
}

let composed: { status: number | null; stderr: string; doc: Doc } | undefined;

/** The compose file resolved by docker-compose (interpolated, anchors merged), run once. */
function composeConfig(): { status: number | null; stderr: string; doc: Doc } {
  if (composed !== undefined) return composed;
  const r = run('docker-compose', ['-f', COMPOSE, 'config'], {
    // Interpolation from a clean environment: the defaults in the file.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: tmpdir() },
  });
  const d: unknown = r.status === 0 ? parseYaml(r.stdout) : undefined;
  composed = { status: r.status, stderr: r.stderr, doc: isObject(d) ? d : {} };
  return composed;
}

/** A service's volumes as [source, target] (docker-compose v1 prints `src:dst:mode`). */
function volumesOf(service: Doc): Array<[string, string]> {
  return ((service['volumes'] as unknown[] | undefined) ?? []).map((v) => {
    if (isObject(v)) return [String(v['source']), String(v['target'])];
    const [src, dst] = String(v).split(':');
    return [src ?? '', dst ?? ''];
  });
}

function envOf(service: Doc): Record<string, string> {
  const env = service['environment'];
  if (!isObject(env)) return {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v ?? '')]),
  );
}

void t.test('every YAML file under deploy/ parses, and the dashboard JSON', (t) => {
  const files = filesUnder(DEPLOY_DIR);
  const yamls = files.filter((f) => /\.ya?ml$/.test(f));
  t.ok(yamls.length >= 15, `${yamls.length} YAML files`);
  for (const f of yamls) {
    let docs: unknown[] = [];
    t.doesNotThrow(() => (docs = yamlDocs(f)), rel(f));
    t.ok(docs.length > 0 && docs.every(isObject), `${rel(f)}: ${docs.length} mapping(s)`);
  }
  const jsons = files.filter((f) => f.endsWith('.json'));
  t.ok(jsons.includes(DASHBOARD), 'the dashboard is there');
  for (const f of jsons) {
    t.doesNotThrow(() => {
      JSON.parse(readFileSync(f, 'utf8'));
    }, rel(f));
  }
  t.end();
});

void t.test('docker-compose config accepts deploy/compose.yaml and the stack is complete', (t) => {
  t.ok(which('docker-compose'), `docker-compose ${MISSING_TOOL}`);
  const { status, stderr, doc } = composeConfig();
  t.equal(status, 0, `docker-compose config: ${stderr}`);
  const services = doc['services'] as Record<string, Doc>;
  t.same(Object.keys(services).sort(), [
    'clickhouse',
    'grafana',
    'kernel-a',
    'kernel-b',
    'nats',
    'prometheus',
    'redis',
  ]);
  t.ok((services['nats']!['command'] as string[]).includes('-js'), 'NATS runs JetStream (-js)');
  t.match(String(services['clickhouse']!['image']), /^clickhouse\/clickhouse-server:/);
  for (const [name, s] of Object.entries(services)) {
    t.ok(isObject(s['healthcheck']), `${name} has a healthcheck`);
  }
  const sets: number[][] = [];
  for (const name of ['kernel-a', 'kernel-b']) {
    const s = services[name]!;
    const deps = s['depends_on'] as Record<string, Doc>;
    for (const dep of ['nats', 'redis', 'clickhouse']) {
      t.equal(deps[dep]?.['condition'], 'service_healthy', `${name} waits for ${dep} healthy`);
    }
    t.equal((s['build'] as Doc)['dockerfile'], 'deploy/Dockerfile', `${name} built from deploy/`);
    t.equal(
      resolve(String((s['build'] as Doc)['context'])),
      resolve(repoRoot),
      `${name}: build context is the repository root`,
    );
    const env = envOf(s);
    for (const key of Object.keys(env)) {
      t.ok(CONFIG_ENV.has(key), `${name}: ${key} is read by config/config.ts`);
    }
    t.equal(env['QILIN_KERNEL_ID'], name, `${name}: its own kernel id`);
    // The values pass the kernel's own validation.
    let partitions: number[] = [];
    t.doesNotThrow(() => {
      const c = loadConfig({ env });
      t.ok(c.clickhouseUrl, `${name} stores in ClickHouse, not chdb`);
      const p = parsePartitionSet(c.kernelPartitions, c.natsPartitions);
      if (typeof p === 'string') throw new Error(p);
      partitions = p;
    }, `${name}: loadConfig accepts its environment`);
    sets.push(partitions);
    const ports = (s['ports'] as Doc[]).map((p) => Number(p['target']));
    t.same(ports, [DEFAULT_HTTP_PORT], `${name} publishes the kernel's HTTP port`);
    const test = ((s['healthcheck'] as Doc)['test'] as string[]).join(' ');
    t.match(test, `/health/live`, `${name} healthcheck asks /health/live`);
    t.match(test, `:${DEFAULT_HTTP_PORT}/`, `${name} healthcheck on the HTTP port`);
  }
  const all = sets.flat().sort((a, b) => a - b);
  t.same(
    all,
    Array.from({ length: DEFAULT_NATS_PARTITIONS }, (_, i) => i),
    'kernel-a and kernel-b divide every partition, none twice',
  );
  t.end();
});

void t.test('docker-compose config fails on a broken compose file (the check bites)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = readFileSync(COMPOSE, 'utf8').replace(
    '    redis:\n      condition: service_healthy',
    '    no-such-service:\n      condition: service_healthy',
  );
  t.not(text, readFileSync(COMPOSE, 'utf8'), 'mutated');
  const broken = join(dir, 'compose.yaml');
  writeFileSync(broken, text);
  const r = run('docker-compose', ['-f', broken, 'config', '-q'], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: tmpdir() },
  });
  t.not(r.status, 0, 'refused');
  t.end();
});

void t.test('the NATS config of compose has the mapping the kernel expects', (t) => {
  const text = readFileSync(join(DEPLOY_DIR, 'nats/nats.conf'), 'utf8');
  const m = marketMapping(DEFAULT_NATS_PARTITIONS);
  t.match(text, `mappings = { ${JSON.stringify(m.from)}: ${JSON.stringify(m.to)} }`);
  t.match(text, /^jetstream \{/m, 'JetStream on');
  t.match(text, /^port: 4222$/m);
  const { doc } = composeConfig();
  const env = envOf((doc['services'] as Record<string, Doc>)['kernel-a']!);
  t.equal(env['QILIN_NATS_URL'], 'nats://nats:4222');
  t.equal(Number(env['QILIN_NATS_PARTITIONS']), DEFAULT_NATS_PARTITIONS);
  t.end();
});

void t.test(
  'the Dockerfile: multi-stage, non-root, health on /health/live, the files the kernel needs',
  (t) => {
    const text = readFileSync(join(DEPLOY_DIR, 'Dockerfile'), 'utf8');
    const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
    const froms = lines.filter((l) => l.startsWith('FROM '));
    t.same(
      froms.map((l) => l.split(/\s+/).pop()),
      ['build', 'runtime'],
      'two stages: build, runtime',
    );
    t.match(text, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m, 'node:20-bookworm-slim');
    const [build, runtime] = text.split(/^FROM .* AS runtime$/m) as [string, string];
    t.match(build, /RUN npm ci\b/, 'build: npm ci');
    t.match(build, /RUN npm run build/, 'build: npm run build');
    t.match(runtime, /RUN npm ci --omit=dev/, 'runtime: production dependencies only');
    t.match(runtime, /COPY --from=build \/app\/dist \.\/dist/, 'runtime: the compiled dist/');
    const user = /^USER (\S+)$/m.exec(runtime)?.[1];
    t.ok(user !== undefined && user !== 'root' && user !== '0', `non-root user (${user})`);
    // Instructions with their continuation lines joined, comments left out.
    const instructions = lines.filter((l) => !l.startsWith('#')).join('\n');
    t.match(instructions, /^HEALTHCHECK .*\/health\/live/m, 'HEALTHCHECK on /health/live');
    t.notMatch(instructions, /\bcurl\b|\bwget\b/, 'no curl or wget');
    t.match(runtime, new RegExp(`^EXPOSE ${DEFAULT_HTTP_PORT}$`, 'm'), 'EXPOSE the HTTP port');
    t.match(runtime, /^ENTRYPOINT \["node", "bin\/qilin\.js", "start"\]$/m);
    for (const m of instructions.matchAll(/^ENV (.+)$/gm)) {
      for (const kv of m[1]!.replace(/\\/g, ' ').split(/\s+/).filter(Boolean)) {
        const key = kv.split('=')[0]!;
        t.ok(key === 'NODE_ENV' || CONFIG_ENV.has(key), `ENV ${key} is read by the code`);
      }
    }
    t.match(text, new RegExp(`QILIN_HTTP_PORT=${DEFAULT_HTTP_PORT}\\b`));
    // The build stage copies every folder tsc compiles; the runtime stage the
    // files the kernel reads at run time (cli/dashboard.ts).
    const tsconfig = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as {
      include: string[];
    };
    const copied = [...build.matchAll(/^COPY (\S+) /gm)].map((m) => m[1]!);
    for (const dir of [...tsconfig.include, 'dashboard']) {
      t.ok(copied.includes(dir), `build stage copies ${dir}/`);
    }
    for (const f of ['bin', 'dashboard/index.html', 'dashboard/dashboard.css', 'docs/api']) {
      t.match(
        runtime,
        new RegExp(`^COPY .*\\b${f.replace(/[./]/g, '\\$&')}\\b`, 'm'),
        `runtime: ${f}`,
      );
    }
    // Every COPY source exists and is not excluded from the build context.
    const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) {
        t.ok(existsSync(join(repoRoot, src)), `COPY ${src} exists`);
        t.notOk(
          ignored.some((p) => src === p || src.startsWith(`${p}/`)),
          `COPY ${src} is in the build context (.dockerignore)`,
        );
      }
    }
    t.ok(ignored.includes('node_modules') && ignored.includes('dist'), '.dockerignore');
    t.end();
  },
);

void t.test(
  'promtool accepts the Prometheus config and the rules, and their unit tests pass',
  (t) => {
    t.ok(which('promtool'), `promtool ${MISSING_TOOL}`);
    const rules = run('promtool', ['check', 'rules', join(PROM_DIR, 'alerts.yml')]);
    t.equal(rules.status, 0, `promtool check rules: ${rules.stdout}${rules.stderr}`);
    const config = run('promtool', ['check', 'config', join(PROM_DIR, 'prometheus.yml')]);
    t.equal(config.status, 0, `promtool check config: ${config.stdout}${config.stderr}`);
    const tests = run('promtool', ['test', 'rules', join(PROM_DIR, 'alerts.test.yml')]);
    t.equal(tests.status, 0, `promtool test rules: ${tests.stdout}${tests.stderr}`);
    t.end();
  },
);

void t.test(
  'promtool test rules fails when an alert no longer fires as tested (the tests bite)',
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'qilin-rules-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(PROM_DIR, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
    const text = readFileSync(join(PROM_DIR, 'alerts.yml'), 'utf8');
    const mutated = text.replace('qilin_store_lag_seconds > 60', 'qilin_store_lag_seconds > 600');
    t.not(mutated, text, 'mutated');
    writeFileSync(join(dir, 'alerts.yml'), mutated);
    const r = run('promtool', ['test', 'rules', join(dir, 'alerts.test.yml')]);
    t.not(r.status, 0, 'fails');
    t.match(r.stdout + r.stderr, /QilinStoreBehind/, 'naming the alert');
    t.end();
  },
);

void t.test(
  'every alert: a test that fires it, severity, for, a QLN code and a runbook link',
  (t) => {
    const rules = alertRules();
    t.ok(rules.length >= 20, `${rules.length} alerts`);
    const tests = yamlDoc(join(PROM_DIR, 'alerts.test.yml'));
    const fired = new Set<string>();
    let quiet = 0;
    for (const group of tests['tests'] as Doc[]) {
      for (const c of group['alert_rule_test'] as Doc[]) {
        if ((c['exp_alerts'] as unknown[]).length > 0) fired.add(String(c['alertname']));
        else quiet++;
      }
    }
    t.ok(quiet >= 5, `${quiet} cases where an alert must not fire`);
    const opsAnchors = anchors(readFileSync(OPERATIONS, 'utf8'));
    const codes = new Set(
      [
        ...readFileSync(join(repoRoot, 'kernel/errors.ts'), 'utf8').matchAll(/'(QLN_[A-Z_]+)'/g),
      ].map((m) => m[1]!),
    );
    t.ok(codes.size >= 20, `${codes.size} codes in kernel/errors.ts`);
    const names = new Set<string>();
    for (const r of rules) {
      t.notOk(names.has(r.alert), `${r.alert} is unique`);
      names.add(r.alert);
      t.ok(fired.has(r.alert), `${r.alert} has a unit test that fires it`);
      t.ok(
        ['critical', 'warning', 'info'].includes(r.labels['severity'] ?? ''),
        `${r.alert} severity`,
      );
      const code = r.labels['code'] ?? '';
      t.ok(code === 'none' || codes.has(code), `${r.alert} code ${code} is in the catalogue`);
      const desc = r.annotations['description'] ?? '';
      t.ok(r.annotations['summary'], `${r.alert} summary`);
      if (code === 'none') t.match(desc, /^No code/, `${r.alert} says it has no code`);
      else t.match(desc, code, `${r.alert} description names ${code}`);
      for (const c of desc.match(/QLN_[A-Z_]+/g) ?? []) {
        t.ok(codes.has(c), `${r.alert} names ${c}, a real code`);
      }
      const [doc, anchor] = (r.annotations['runbook_url'] ?? '').split('#');
      t.equal(doc, 'docs/operations.md', `${r.alert} links docs/operations.md`);
      t.ok(opsAnchors.has(anchor ?? ''), `${r.alert} anchor #${anchor} exists`);
      // A `for:` on every gauge condition; counters' increase() fires at once.
      if (!/increase\(|rate\(/.test(r.expr)) t.ok(r.for, `${r.alert} has a for:`);
    }
    t.end();
  },
);

void t.test(
  'every metric of the alerts, the dashboard and the HPA is one the kernel exports',
  async (t) => {
    const names = await registryNames();
    const uses: Array<[string, string]> = [];
    for (const r of alertRules()) for (const s of seriesIn(r.expr)) uses.push([r.alert, s]);
    for (const e of dashboardExprs()) for (const s of seriesIn(e)) uses.push(['dashboard', s]);
    const hpa = yamlDoc(join(DEPLOY_DIR, 'k8s/base/hpa.yaml'));
    for (const m of (hpa['spec'] as Doc)['metrics'] as Doc[]) {
      uses.push(['hpa', String(((m['pods'] as Doc)['metric'] as Doc)['name'])]);
    }
    t.ok(uses.length >= 40, `${uses.length} uses`);
    for (const [where, s] of uses) {
      if (s === 'up') {
        t.equal(
          where,
          'QilinKernelDown',
          'up (Prometheus target health) only where the kernel is down',
        );
        continue;
      }
      t.ok(
        metricOf(s, names),
        `${where}: ${s} is exported (cli/kernel-metrics.ts or Node defaults)`,
      );
    }
    const used = new Set(uses.map(([, s]) => s));
    for (const s of [
      'qilin_ticks_received_total',
      'qilin_ticks_rejected_total',
      'qilin_stage_latency_seconds_bucket',
      'qilin_ring_used_bytes',
      'qilin_breaker_state',
      'qilin_risk_killed',
      'qilin_store_lag_seconds',
      'qilin_store_spilled_rows',
      'qilin_quality_issues_total',
    ]) {
      t.ok(used.has(s), `${s} is watched`);
    }
    // Reject reasons named in selectors are reasons the kernel gives.
    const exprs = [...alertRules().map((r) => r.expr), ...dashboardExprs()].join('\n');
    for (const m of exprs.matchAll(
      /qilin_ticks_rejected_total\{[^}]*reason(?:=|!~|=~)"([^"]+)"/g,
    )) {
      for (const reason of m[1]!.split('|')) {
        t.ok((RejectReasons as readonly string[]).includes(reason), `reject reason ${reason}`);
      }
    }
    t.end();
  },
);

void t.test(
  'default process metrics keep their standard names and stay out of the metrics table',
  async (t) => {
    const names = await registryNames();
    for (const n of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      t.ok(names.has(n), n);
    }
    t.same(
      [...names].filter((n) => n.startsWith('qilin_process_')),
      [],
      'no qilin_process_ prefix',
    );
    const m = new KernelMetrics(idleSources);
    try {
      const rows = await m.snapshot(1);
      t.ok(rows.length > 0, `${rows.length} snapshot rows`);
      t.same(
        rows.filter((r) => !r.name.startsWith('qilin_')).map((r) => r.name),
        [],
        'the metrics table keeps only qilin_ series',
      );
      t.match(await m.text(), /^process_resident_memory_bytes \d/m, '/metrics text has them');
    } finally {
      m.close();
    }
    t.end();
  },
);

void t.test('Prometheus scrapes both compose kernels on the HTTP port, by node', (t) => {
  const prom = yamlDoc(join(PROM_DIR, 'prometheus.yml'));
  t.same(prom['rule_files'], ['alerts.yml']);
  t.ok(existsSync(join(PROM_DIR, 'alerts.yml')), 'rule file next to the config');
  const job = (prom['scrape_configs'] as Doc[]).find((j) => j['job_name'] === 'qilin-kernel');
  t.ok(job, 'job qilin-kernel (the alerts select it)');
  t.equal(job?.['metrics_path'], '/metrics');
  t.ok(KERNEL_HTTP_ROUTES.includes('/metrics'), 'a route the kernel serves');
  const targets = ((job?.['static_configs'] as Doc[] | undefined) ?? []).map((s) => ({
    target: (s['targets'] as string[])[0],
    node: (s['labels'] as Doc)['node'],
  }));
  t.same(targets, [
    { target: `kernel-a:${DEFAULT_HTTP_PORT}`, node: 'kernel-a' },
    { target: `kernel-b:${DEFAULT_HTTP_PORT}`, node: 'kernel-b' },
  ]);
  const { doc } = composeConfig();
  const volumes = volumesOf((doc['services'] as Record<string, Doc>)['prometheus']!).map(
    ([src, dst]) => `${src}:${dst}`,
  );
  for (const f of ['prometheus.yml', 'alerts.yml']) {
    t.ok(
      volumes.includes(`${join(PROM_DIR, f)}:/etc/prometheus/${f}`),
      `compose mounts ${f} next to the config`,
    );
  }
  t.end();
});

void t.test('Grafana: provisioned datasources and dashboard, per-node panels', (t) => {
  const ds = yamlDoc(join(DEPLOY_DIR, 'grafana/provisioning/datasources/datasources.yaml'));
  const uids = new Set((ds['datasources'] as Doc[]).map((d) => d['uid']));
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Doc;
  const vars = (dash['templating'] as Doc)['list'] as Doc[];
  const node = vars.find((v) => v['name'] === 'node');
  t.ok(node, 'a node template variable');
  t.match(String(node?.['definition']), /label_values\(qilin_[a-z_]+, node\)/);
  const dsVar = vars.find((v) => v['type'] === 'datasource');
  t.ok(
    uids.has((dsVar?.['current'] as Doc | undefined)?.['value']),
    'default datasource provisioned',
  );
  const panels = (dash['panels'] as Doc[]).filter((p) => p['type'] !== 'row');
  for (const p of panels) {
    const uid = (p['datasource'] as Doc)['uid'];
    t.ok(
      uid === '${datasource}' || uids.has(uid),
      `${String(p['title'])}: datasource ${String(uid)}`,
    );
    for (const target of (p['targets'] as Doc[] | undefined) ?? []) {
      if (typeof target['expr'] === 'string') {
        t.match(target['expr'], 'node=~"$node"', `${String(p['title'])}: per node`);
      }
    }
  }
  const titles = panels.map((p) => String(p['title'])).join('\n');
  for (const want of [
    /Ingest rate/,
    /Rejects by reason/,
    /latency/i,
    /Stage latency/,
    /Ring occupancy/,
    /Breaker and kill switch/,
    /Store lag/,
    /spilled/i,
    /Quality score/,
  ]) {
    t.match(titles, want, `a panel ${want}`);
  }
  const ids = panels.map((p) => p['id']);
  t.equal(new Set(ids).size, ids.length, 'panel ids unique');
  const prov = yamlDoc(join(DEPLOY_DIR, 'grafana/provisioning/dashboards/dashboards.yaml'));
  const path = ((prov['providers'] as Doc[])[0]!['options'] as Doc)['path'];
  const { doc } = composeConfig();
  const grafana = (doc['services'] as Record<string, Doc>)['grafana']!;
  const mounts = volumesOf(grafana);
  t.ok(
    mounts.some(([s, d]) => s === join(DEPLOY_DIR, 'grafana/dashboards') && d === path),
    'compose mounts the dashboards where the provider reads them',
  );
  t.ok(
    mounts.some(
      ([s, d]) =>
        s === join(DEPLOY_DIR, 'grafana/provisioning') && d === '/etc/grafana/provisioning',
    ),
    'compose mounts the provisioning folder',
  );
  t.end();
});

void t.test(
  'docs: every troubleshooting code has its alert, or deploy/README.md says no metric sees it',
  (t) => {
    const ops = readFileSync(OPERATIONS, 'utf8');
    const rows = tableAfter(ops, '## Troubleshooting by error code');
    const header = rows[0]!;
    const alertCol = header.indexOf('alert');
    t.ok(alertCol > 0, 'the table has an alert column');
    const alerts = new Map(alertRules().map((r) => [r.alert, r]));
    const readme = readFileSync(DEPLOY_README, 'utf8');
    const undetectable = tableAfter(readme, 'No metric can detect')
      .slice(1)
      .flatMap((r) => r[0]!.match(/QLN_[A-Z_]+/g) ?? []);
    t.ok(undetectable.length >= 3, `${undetectable.length} codes listed as undetectable`);
    for (const row of rows.slice(1)) {
      const codes = row[0]!.match(/QLN_[A-Z_]+/g) ?? [];
      const named = row[alertCol]!.match(/Qilin[A-Za-z]+/g) ?? [];
      for (const code of codes) {
        if (named.length === 0) {
          t.ok(undetectable.includes(code), `${code}: no alert, listed in deploy/README.md`);
          continue;
        }
        t.notOk(undetectable.includes(code), `${code} has an alert: not listed as undetectable`);
        for (const a of named) {
          const rule = alerts.get(a);
          t.ok(rule, `${code}: alert ${a} exists`);
          t.match(rule?.annotations['description'] ?? '', code, `${a}'s description names ${code}`);
        }
      }
    }
    t.match(ops, /^## Deploying$/m, 'operations.md has a Deploying section');
    t.match(ops, /\(\.\.\/deploy\/README\.md\)/, 'pointing to deploy/README.md');
    t.end();
  },
);
