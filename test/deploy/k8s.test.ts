/**
 * deploy/k8s checked offline: the base and the overlays render (kustomize
 * when the machine has it, else the test's own renderer, which is compared
 * with kustomize wherever both exist), every object validates against the
 * Kubernetes schemas of `kubernetes-models`, and the manifests agree with the
 * code: probe paths the kernel serves, the default HTTP port, environment
 * variables the config reads (with values it accepts), metric names it
 * exports, and partition sets that give every partition to exactly one pod.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import t from 'tap';
import { KERNEL_HTTP_ROUTES } from '../../cli/kernel-app.js';
import { ConfigSchema, envName, loadConfig } from '../../config/config.js';
import { parsePartitionSet } from '../../kernel/partition-set.js';
import {
  DEPLOY_DIR,
  isObject,
  kustomizeBuild,
  kustomizeCommand,
  renderKustomization,
  renderOverlay,
  run,
  strategicMerge,
  type Doc,
} from './deploy-files.js';

const K8S = join(DEPLOY_DIR, 'k8s');
const TARGETS = ['base', 'overlays/dev', 'overlays/prod'] as const;
const CONFIG_ENV = new Set(['QILIN_CONFIG', ...Object.keys(ConfigSchema.shape).map(envName)]);
const DEFAULT_HTTP_PORT = ConfigSchema.shape.httpPort.parse(undefined);
/** Variables of the pod that are not kernel settings: the start script's. */
const DEPLOY_ONLY_ENV = new Set(['POD_NAME', 'PARTITION_SETS']);

/** A validating model per kind used under deploy/k8s. */
const MODELS: Record<string, (d: Doc) => { validate(): void }> = {
  'v1/ConfigMap': (d) => new ConfigMap(d),
  'v1/Service': (d) => new Service(d),
  'apps/v1/StatefulSet': (d) => new StatefulSet(d),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d),
};

const rendered = new Map<string, Doc[]>();
function render(target: string): Doc[] {
  let docs = rendered.get(target);
  if (docs === undefined) {
    docs = renderOverlay(join(K8S, target)).docs;
    rendered.set(target, docs);
  }
  return docs;
}

function find(docs: Doc[], kind: string, name?: string): Doc {
  const d = docs.find(
    (x) => x['kind'] === kind && (name === undefined || (x['metadata'] as Doc)['name'] === name),
  );
  if (d === undefined) throw new Error(`no ${kind} ${name ?? ''}`);
  return d;
}

function at(obj: unknown, ...path: Array<string | number>): unknown {
  let v = obj;
  for (const p of path) {
    if (typeof p === 'number') v = Array.isArray(v) ? (v[p] as unknown) : undefined;
    else v = isObject(v) ? v[p] : undefined;
  }
  return v;
}

function kernelContainer(docs: Doc[]): Doc {
  const c = at(
    find(docs, 'StatefulSet', 'qilin-kernel'),
    'spec',
    'template',
    'spec',
    'containers',
    0,
  );
  if (!isObject(c)) throw new Error('no kernel container');
  return c;
}

/** Objects sorted by kind and name, for comparing renders. */
function byKindName(docs: Doc[]): Doc[] {
  const key = (d: Doc) => `${String(d['kind'])}/${String(at(d, 'metadata', 'name'))}`;
  return [...docs].sort((a, b) => key(a).localeCompare(key(b)));
}

void t.test('strategicMerge merges maps and named lists, replaces other lists', (t) => {
  const target = {
    spec: {
      replicas: 2,
      containers: [
        { name: 'a', image: 'x', env: [{ name: 'K', value: '1' }] },
        { name: 'b', image: 'y' },
      ],
      args: ['--one'],
    },
  };
  const patch = {
    spec: {
      replicas: 4,
      containers: [{ name: 'a', env: [{ name: 'L', value: '2' }] }],
      args: ['--two'],
    },
  };
  t.same(strategicMerge(target, patch), {
    spec: {
      replicas: 4,
      containers: [
        {
          name: 'a',
          image: 'x',
          env: [
            { name: 'K', value: '1' },
            { name: 'L', value: '2' },
          ],
        },
        { name: 'b', image: 'y' },
      ],
      args: ['--two'],
    },
  });
  t.end();
});

void t.test('the base and the overlays render; the own renderer agrees with kustomize', (t) => {
  const k = kustomizeCommand();
  for (const target of TARGETS) {
    const docs = render(target);
    t.same(
      byKindName(docs).map((d) => `${String(d['kind'])}/${String(at(d, 'metadata', 'name'))}`),
      [
        'ConfigMap/qilin-kernel-config',
        'HorizontalPodAutoscaler/qilin-kernel',
        'PodDisruptionBudget/qilin-kernel',
        'Service/qilin-kernel',
        'Service/qilin-kernel-headless',
        'StatefulSet/qilin-kernel',
      ],
      `${target}: the objects`,
    );
    t.notOk(
      docs.some((d) => d['kind'] === 'Secret'),
      `${target}: no Secret committed`,
    );
    if (k === undefined) continue;
    // Where kustomize exists the fallback renderer must give the same objects,
    // so a machine without kustomize checks the same manifests.
    t.same(
      byKindName(renderKustomization(join(K8S, target))),
      byKindName(kustomizeBuild(join(K8S, target))),
      `${target}: renderKustomization equals ${k.command}`,
    );
  }
  if (k === undefined) t.comment('no kustomize or kubectl: rendered by renderKustomization only');
  t.equal(at(find(render('overlays/prod'), 'StatefulSet'), 'metadata', 'namespace'), 'qilin');
  t.equal(at(find(render('overlays/dev'), 'StatefulSet'), 'metadata', 'namespace'), 'qilin-dev');
  t.match(String(kernelContainer(render('overlays/prod'))['image']), /^qilin:\d+\.\d+\.\d+$/);
  t.end();
});

void t.test('every rendered object validates against the Kubernetes schemas', (t) => {
  for (const target of TARGETS) {
    for (const d of render(target)) {
      const key = `${String(d['apiVersion'])}/${String(d['kind'])}`;
      const model = MODELS[key];
      t.ok(model, `${target}: ${key} has a schema`);
      if (model === undefined) continue;
      t.doesNotThrow(
        () => model(d).validate(),
        `${target}: ${key} ${String(at(d, 'metadata', 'name'))} is valid`,
      );
    }
  }
  // The validator bites: a port given as text, a probe without a handler port.
  const bad = structuredClone(find(render('base'), 'StatefulSet'));
  const c = at(bad, 'spec', 'template', 'spec', 'containers', 0) as Doc;
  (c['ports'] as Doc[])[0]!['containerPort'] = 'http';
  t.throws(() => new StatefulSet(bad).validate(), 'a text containerPort is refused');
  const hpa = structuredClone(find(render('base'), 'HorizontalPodAutoscaler'));
  delete (hpa['spec'] as Doc)['maxReplicas'];
  t.throws(() => new HorizontalPodAutoscaler(hpa).validate(), 'maxReplicas is required');
  t.end();
});

void t.test(
  'the kernel pod: probes on the kernel routes, its port, non-root, resources, secrets by reference',
  (t) => {
    for (const target of TARGETS) {
      const docs = render(target);
      const sts = find(docs, 'StatefulSet', 'qilin-kernel');
      const c = kernelContainer(docs);
      const podSpec = at(sts, 'spec', 'template', 'spec') as Doc;
      const port = (c['ports'] as Doc[]).find((p) => p['name'] === 'http');
      t.equal(
        port?.['containerPort'],
        DEFAULT_HTTP_PORT,
        `${target}: containerPort = default httpPort`,
      );
      const probes: Array<[string, string]> = [
        ['livenessProbe', '/health/live'],
        ['readinessProbe', '/health/ready'],
        ['startupProbe', '/health/startup'],
      ];
      for (const [probe, path] of probes) {
        const get = at(c, probe, 'httpGet') as Doc | undefined;
        t.equal(get?.['path'], path, `${target}: ${probe} on ${path}`);
        t.ok(
          (KERNEL_HTTP_ROUTES as readonly string[]).includes(String(get?.['path'])),
          `${target}: ${path} is a route the kernel serves`,
        );
        t.equal(get?.['port'], 'http', `${target}: ${probe} on the http port`);
      }
      t.equal(at(podSpec, 'securityContext', 'runAsNonRoot'), true, `${target}: runAsNonRoot`);
      t.not(at(podSpec, 'securityContext', 'runAsUser'), 0, `${target}: not uid 0`);
      t.equal(at(c, 'securityContext', 'allowPrivilegeEscalation'), false);
      t.equal(at(c, 'securityContext', 'readOnlyRootFilesystem'), true);
      t.same(at(c, 'securityContext', 'capabilities', 'drop'), ['ALL']);
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) {
          t.ok(at(c, 'resources', kind, r), `${target}: resources.${kind}.${r}`);
        }
      }
      const mounts = (c['volumeMounts'] as Doc[]).map((m) => m['mountPath']);
      const cm = find(docs, 'ConfigMap', 'qilin-kernel-config');
      const data = cm['data'] as Record<string, string>;
      t.ok(mounts.includes(data['QILIN_STATE_DIR']), `${target}: the state dir is a volume`);
      t.equal(
        at(sts, 'spec', 'volumeClaimTemplates', 0, 'metadata', 'name'),
        'state',
        `${target}: a persistent volume per pod for the spill files`,
      );
      t.equal(at(sts, 'spec', 'updateStrategy', 'type'), 'RollingUpdate');
      t.ok(Number(podSpec['terminationGracePeriodSeconds']) >= 30, 'time to drain');
      // Secrets only by reference; the ConfigMap holds none.
      const env = c['env'] as Doc[];
      for (const name of ['QILIN_REDIS_URL', 'QILIN_CLICKHOUSE_URL', 'QILIN_API_KEYS']) {
        const e = env.find((x) => x['name'] === name);
        t.ok(at(e, 'valueFrom', 'secretKeyRef', 'name'), `${target}: ${name} from a secretKeyRef`);
        t.equal(e?.['value'], undefined, `${target}: ${name} has no literal value`);
        t.notOk(name in data, `${target}: ${name} not in the ConfigMap`);
      }
      t.equal(
        at(
          env.find((x) => x['name'] === 'QILIN_KERNEL_ID'),
          'valueFrom',
          'fieldRef',
          'fieldPath',
        ),
        'metadata.name',
        `${target}: the kernel id is the pod's stable name`,
      );
      t.equal(at(c, 'envFrom', 0, 'configMapRef', 'name'), 'qilin-kernel-config');
      // Every variable is a kernel setting, or one of the start script's.
      for (const name of [...Object.keys(data), ...env.map((e) => String(e['name']))]) {
        t.ok(
          CONFIG_ENV.has(name) || DEPLOY_ONLY_ENV.has(name),
          `${target}: ${name} is read by config/config.ts (or the start script)`,
        );
      }
      // Selectors: the Services, the PDB and the StatefulSet pick the pods.
      const podLabels = at(sts, 'spec', 'template', 'metadata', 'labels') as Doc;
      const matches = (sel: unknown) =>
        isObject(sel) && Object.entries(sel).every(([k, v]) => podLabels[k] === v);
      t.ok(matches(at(sts, 'spec', 'selector', 'matchLabels')), 'StatefulSet selector');
      for (const svc of docs.filter((d) => d['kind'] === 'Service')) {
        t.ok(
          matches(at(svc, 'spec', 'selector')),
          `${String(at(svc, 'metadata', 'name'))} selector`,
        );
        t.equal(at(svc, 'spec', 'ports', 0, 'port'), DEFAULT_HTTP_PORT, 'Service port');
      }
      t.ok(
        matches(at(find(docs, 'PodDisruptionBudget'), 'spec', 'selector', 'matchLabels')),
        'PDB selector',
      );
      t.equal(
        at(sts, 'spec', 'template', 'metadata', 'annotations', 'prometheus.io/port'),
        String(DEFAULT_HTTP_PORT),
      );
    }
    t.end();
  },
);

void t.test(
  'partition sets: one per replica, every partition once; the HPA keeps the count; loadConfig accepts each pod',
  (t) => {
    for (const target of TARGETS) {
      const docs = render(target);
      const data = find(docs, 'ConfigMap', 'qilin-kernel-config')['data'] as Record<string, string>;
      const sts = find(docs, 'StatefulSet', 'qilin-kernel');
      const hpa = find(docs, 'HorizontalPodAutoscaler', 'qilin-kernel');
      const sets = (data['PARTITION_SETS'] ?? '').split(/\s+/).filter(Boolean);
      const replicas = Number(at(sts, 'spec', 'replicas'));
      t.equal(sets.length, replicas, `${target}: ${sets.length} sets for ${replicas} replicas`);
      t.equal(at(hpa, 'spec', 'minReplicas'), replicas, `${target}: HPA minReplicas`);
      t.equal(at(hpa, 'spec', 'maxReplicas'), replicas, `${target}: HPA maxReplicas`);
      t.same(at(hpa, 'spec', 'scaleTargetRef'), {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        name: 'qilin-kernel',
      });
      t.equal(at(hpa, 'spec', 'metrics', 0, 'type'), 'Pods');
      const all: number[] = [];
      for (const set of sets) {
        const env = {
          ...data,
          QILIN_KERNEL_PARTITIONS: set,
          QILIN_KERNEL_ID: 'qilin-kernel-0',
          QILIN_REDIS_URL: 'redis://redis:6379',
          QILIN_CLICKHOUSE_URL: 'http://qilin:secret@clickhouse:8123',
          QILIN_API_KEYS: 'read-key-1:read',
        };
        t.doesNotThrow(() => {
          const c = loadConfig({ env });
          const p = parsePartitionSet(c.kernelPartitions, c.natsPartitions);
          if (typeof p === 'string') throw new Error(p);
          all.push(...p);
        }, `${target}: loadConfig accepts a pod with ${set}`);
      }
      const total = Number(data['QILIN_NATS_PARTITIONS']);
      t.same(
        all.sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
        `${target}: every one of ${total} partitions in exactly one set`,
      );
    }
    t.end();
  },
);

void t.test('the start script gives each pod its partition set and refuses an extra pod', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qilin-k8s-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in `node` that prints what the kernel would be started with.
  writeFileSync(
    join(dir, 'node'),
    '#!/bin/sh\necho "partitions=$QILIN_KERNEL_PARTITIONS args=$*"\n',
  );
  chmodSync(join(dir, 'node'), 0o755);
  for (const target of TARGETS) {
    const docs = render(target);
    const c = kernelContainer(docs);
    const command = c['command'] as string[];
    const args = c['args'] as string[];
    t.equal(command[0], '/bin/sh');
    const data = find(docs, 'ConfigMap', 'qilin-kernel-config')['data'] as Record<string, string>;
    const sets = (data['PARTITION_SETS'] ?? '').split(/\s+/).filter(Boolean);
    const start = (ordinal: number) =>
      run(command[0]!, [...command.slice(1), ...args], {
        env: {
          PATH: `${dir}:/usr/bin:/bin`,
          POD_NAME: `qilin-kernel-${ordinal}`,
          PARTITION_SETS: data['PARTITION_SETS'],
        },
      });
    sets.forEach((set, i) => {
      const r = start(i);
      t.equal(r.status, 0, `${target}: pod ${i} starts (${r.stderr})`);
      t.equal(
        r.stdout.trim(),
        `partitions=${set} args=bin/qilin.js start ${args.join(' ')}`,
        `${target}: pod ${i} runs the kernel with ${set}`,
      );
    });
    const extra = start(sets.length);
    t.equal(extra.status, 2, `${target}: pod ${sets.length} has no set and stops`);
    t.match(extra.stderr, /no partition set/);
  }
  t.end();
});
