import { randomBytes } from 'node:crypto';
import { ErrorCodes, QilinError } from './errors.js';

/**
 * One audit event: who did what, why, when and from where
 * (docs/security.md "Audit"). The same object is the JSON body on NATS
 * `audit.<action>` and one row of the store's `audit` table.
 *
 * Secrets never enter an event: `actor` names an API key by its id and
 * label (never the key, never its digest), a NATS client by its name or
 * role, a CLI user as `user@host`. {@link validateAuditEvent} refuses a
 * field that looks like a Qilin API key (`qk_…`) as a last line of defence.
 */
export interface AuditEvent {
  /** Unique id (dedup: `Nats-Msg-Id` on the stream, the row key in the table). */
  id: string;
  /** When, µs since the epoch. */
  ts_us: number;
  /** Who: `key:<id>[ (<label>)]`, `nats:<client>`, `cli:<user>@<host>`, or `anonymous`. */
  actor: string;
  /** What: one of {@link AUDIT_ACTIONS}. */
  action: AuditAction;
  /** On what: `risk`, a key id, a route (`/audit`), a topic, a model. */
  target: string;
  outcome: AuditOutcome;
  /** Why: the operator's reason, or why it was refused. */
  reason: string;
  /** From where: a remote address, `nats:<subject>`, `cli:<host>`. */
  source: string;
  /** A small JSON object as a string (at most {@link AUDIT_DETAIL_MAX} characters), '{}' when none. */
  detail: string;
}

/** Every action an audit event may name (`model.promote` is reserved for the model registry). */
export const AUDIT_ACTIONS = [
  'risk.kill',
  'risk.resume',
  'key.create',
  'key.revoke',
  'key.rotate',
  'auth.failure',
  'permission.denied',
  'model.promote',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_OUTCOMES = ['ok', 'refused', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Longest accepted text field (actor, target, reason, source). */
export const AUDIT_TEXT_MAX = 512;
/** Longest accepted `detail` JSON text. */
export const AUDIT_DETAIL_MAX = 4096;
/** Longest accepted id. */
const ID_MAX = 64;
/** An id: NATS-header safe, no spaces. */
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Looks like a Qilin API key (`qk_` + 32 base64url characters): never stored. */
const SECRET_LIKE = /qk_[A-Za-z0-9_-]{20,}/;

/** NATS subject of an action: `audit.risk.kill`, `audit.auth.failure`, … */
export function auditSubject(action: AuditAction): string {
  return `audit.${action}`;
}

/** A new unique event id: time-ordered prefix, random suffix (`a-<ts36>-<hex>`). */
export function newAuditId(tsUs: number = Date.now() * 1000): string {
  return `a-${Math.floor(tsUs).toString(36)}-${randomBytes(6).toString('hex')}`;
}

/** What {@link makeAuditEvent} needs; the rest defaults (id, ts_us now, detail '{}'). */
export interface AuditEventInit {
  action: AuditAction;
  actor: string;
  target: string;
  outcome: AuditOutcome;
  reason?: string;
  source: string;
  /** An object (serialised here) or an already serialised JSON object. */
  detail?: Record<string, unknown> | string;
  id?: string;
  ts_us?: number;
}

/** Build and validate an event (throws QLN_AUDIT_INVALID naming the field). */
export function makeAuditEvent(init: AuditEventInit): AuditEvent {
  const ts = init.ts_us ?? Date.now() * 1000;
  const detail =
    init.detail === undefined
      ? '{}'
      : typeof init.detail === 'string'
        ? init.detail
        : JSON.stringify(init.detail);
  const ev: AuditEvent = {
    id: init.id ?? newAuditId(ts),
    ts_us: Math.round(ts),
    actor: clip(init.actor),
    action: init.action,
    target: clip(init.target),
    outcome: init.outcome,
    reason: clip(init.reason ?? ''),
    source: clip(init.source),
    detail,
  };
  const bad = checkAuditEvent(ev);
  if (bad !== undefined) throw auditInvalid(bad);
  return ev;
}

/** Text longer than AUDIT_TEXT_MAX is cut (with `…`), not refused: a long reason must still be audited. */
function clip(s: string): string {
  return typeof s === 'string' && s.length > AUDIT_TEXT_MAX
    ? `${s.slice(0, AUDIT_TEXT_MAX - 1)}…`
    : s;
}

function auditInvalid(detail: string): QilinError {
  return new QilinError(ErrorCodes.AUDIT_INVALID, `invalid audit event: ${detail}`, {
    details: { detail },
  });
}

/** Why `v` is not a valid AuditEvent, or undefined when it is. */
export function checkAuditEvent(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || !ID.test(o['id']))
    return `field id = ${show(o['id'])} is not 1 to ${ID_MAX} characters [A-Za-z0-9_.:-]`;
  const ts = o['ts_us'];
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0)
    return `field ts_us = ${show(ts)} is not a non-negative integer (µs since the epoch)`;
  if (!(AUDIT_ACTIONS as readonly unknown[]).includes(o['action']))
    return `field action = ${show(o['action'])} is not one of ${AUDIT_ACTIONS.join(', ')}`;
  if (!(AUDIT_OUTCOMES as readonly unknown[]).includes(o['outcome']))
    return `field outcome = ${show(o['outcome'])} is not one of ${AUDIT_OUTCOMES.join(', ')}`;
  for (const f of ['actor', 'target', 'reason', 'source'] as const) {
    const s = o[f];
    if (typeof s !== 'string' || s.length > AUDIT_TEXT_MAX)
      return `field ${f} = ${show(s)} is not a string of at most ${AUDIT_TEXT_MAX} characters`;
    if (f !== 'reason' && s.trim() === '') return `field ${f} is empty`;
    if (SECRET_LIKE.test(s)) return `field ${f} holds something that looks like an API key`;
  }
  const d = o['detail'];
  if (typeof d !== 'string' || d.length > AUDIT_DETAIL_MAX)
    return `field detail is not a string of at most ${AUDIT_DETAIL_MAX} characters`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(d);
  } catch {
    return `field detail = ${show(d)} is not JSON`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return `field detail = ${show(d)} is not a JSON object`;
  if (SECRET_LIKE.test(d)) return 'field detail holds something that looks like an API key';
  return undefined;
}

const FIELDS = [
  'id',
  'ts_us',
  'actor',
  'action',
  'target',
  'outcome',
  'reason',
  'source',
  'detail',
] as const;

/** Event → JSON bytes (the NATS body); fields in a fixed order, nothing else. */
export function encodeAuditEvent(ev: AuditEvent): Uint8Array {
  const o: Record<string, unknown> = {};
  for (const f of FIELDS) o[f] = ev[f];
  return Buffer.from(JSON.stringify(o), 'utf8');
}

/** JSON bytes → a validated event (extra fields dropped), or a detail saying why not. */
export function decodeAuditEvent(data: Uint8Array): AuditEvent | string {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    return `body is not JSON: ${(err as Error).message}`;
  }
  const bad = checkAuditEvent(v);
  if (bad !== undefined) return bad;
  const o = v as Record<string, unknown>;
  const ev = {} as Record<string, unknown>;
  for (const f of FIELDS) ev[f] = o[f];
  return ev as unknown as AuditEvent;
}

/** At most 60 characters of a value, for error messages (an invalid event may hold anything). */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  if (SECRET_LIKE.test(s)) return '<redacted>';
  return s.length <= 60 ? s : `${s.slice(0, 57)}...`;
}
