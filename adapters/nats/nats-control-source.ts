import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCodes, invalidArgument } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { FillMessage, RiskControlMessage } from '../../kernel/messages.js';
import type { ControlHandlers, ControlSource } from '../../kernel/signal-sink.js';
import { isToken, showValue } from './tick-json-decoder.js';

/** Options of {@link NatsControlSource}. */
export interface NatsControlSourceOptions {
  /** A connected client (see connectNats); the source never closes it. */
  nc: NatsConnection;
  log: Logger;
  /**
   * Only this account's fills: subscribes `fill.<account>` instead of
   * `fill.*` (one kernel per account). Ignored when fillSubject is given.
   */
  account?: string;
  /** Fill subjects (default `fill.*`, or `fill.<account>`; the last token is the account). */
  fillSubject?: string;
  /** Kill request subject (default `ctl.risk.kill`). */
  killSubject?: string;
  /** Resume request subject (default `ctl.risk.resume`). */
  resumeSubject?: string;
}

/** Code in the reply when the handler failed without a code (QLN_INTERNAL is requested for the catalogue). */
const INTERNAL_CODE = ErrorCodes.INTERNAL;

/** Longest accepted `by` / `reason` in a control request. */
const MAX_CONTROL_TEXT = 200;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Executors' fills (`fill.<account>`) and operators' risk control requests
 * (`ctl.risk.kill`, `ctl.risk.resume`, request/reply). Every body is parsed
 * and validated here; handlers only ever see well-formed messages, and a
 * handler that throws is logged, never allowed into the NATS client.
 *
 * Reply to a control request: the handler's `RiskControlReply` as JSON, or
 * `{"error":{"code":"QLN_…","message":"…"}}` when the body is refused.
 */
export class NatsControlSource implements ControlSource {
  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly fillSubject: string;
  private readonly killSubject: string;
  private readonly resumeSubject: string;
  private readonly subs: Subscription[] = [];
  private handlers: ControlHandlers | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: NatsControlSourceOptions) {
    this.nc = opts.nc;
    this.log = opts.log.child({ source: 'nats-control' });
    if (opts.account !== undefined && !isToken(opts.account)) {
      invalidArgument('account', opts.account, 'a token [A-Za-z0-9_-]+');
    }
    this.fillSubject =
      opts.fillSubject ?? (opts.account === undefined ? 'fill.*' : `fill.${opts.account}`);
    this.killSubject = opts.killSubject ?? 'ctl.risk.kill';
    this.resumeSubject = opts.resumeSubject ?? 'ctl.risk.resume';
  }

  async start(handlers: ControlHandlers): Promise<void> {
    this.handlers = handlers;
    this.subs.push(
      this.nc.subscribe(this.fillSubject, {
        callback: (err, msg) => {
          if (err === null) this.onFill(msg);
          else this.log.error({ err }, 'fill subscription error');
        },
      }),
      this.nc.subscribe(this.killSubject, {
        callback: (err, msg) => {
          if (err === null) this.onControl('kill', msg);
          else this.log.error({ err }, 'kill subscription error');
        },
      }),
      this.nc.subscribe(this.resumeSubject, {
        callback: (err, msg) => {
          if (err === null) this.onControl('resume', msg);
          else this.log.error({ err }, 'resume subscription error');
        },
      }),
    );
    // Subscriptions are live once the server has processed them.
    await this.nc.flush();
    this.log.info(
      { fill: this.fillSubject, kill: this.killSubject, resume: this.resumeSubject },
      'control source subscribed',
    );
  }

  private onFill(msg: Msg): void {
    const h = this.handlers!;
    const account = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    const parsed = parseFill(msg.data);
    try {
      if (typeof parsed === 'string') h.onBadControl(msg.subject, parsed);
      else if (!isToken(account)) {
        h.onBadControl(msg.subject, `account ${showValue(account)} is not a token [A-Za-z0-9_-]+`);
      } else h.onFill(parsed, account);
    } catch (err) {
      this.log.error({ err, subject: msg.subject }, 'fill handler threw');
    }
  }

  private onControl(op: 'kill' | 'resume', msg: Msg): void {
    const h = this.handlers!;
    const parsed = parseControl(msg.data);
    let reply: string;
    if (typeof parsed === 'string') {
      try {
        h.onBadControl(msg.subject, parsed);
      } catch (err) {
        this.log.error({ err, subject: msg.subject }, 'onBadControl threw');
      }
      reply = errorReply(ErrorCodes.INVALID_ARGUMENT, parsed);
    } else {
      try {
        reply = JSON.stringify(h.onRiskControl(op, parsed));
        this.log.warn({ op, by: parsed.by, reason: parsed.reason }, 'risk control applied');
      } catch (err) {
        this.log.error({ err, op }, 'risk control handler threw');
        // A QilinError keeps its code; anything else is an internal failure of the handler.
        const code = (err as { code?: unknown } | null)?.code;
        reply = errorReply(
          typeof code === 'string' ? code : INTERNAL_CODE,
          err instanceof Error ? err.message : String(err),
        );
      }
    }
    if (msg.reply !== undefined && msg.reply !== '') msg.respond(reply);
    else this.log.info({ op, subject: msg.subject }, 'control message without reply subject');
  }

  /** Drain the subscriptions (handlers see what already arrived). Safe twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(
        this.subs.map(async (s) => {
          if (s.isClosed()) return;
          try {
            await s.drain();
          } catch (err) {
            this.log.debug({ err }, 'control subscription drain failed (connection closing)');
          }
        }),
      );
    })();
    return this.closing;
  }
}

function errorReply(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** JSON object body or a detail saying why not. */
function parseObject(data: Uint8Array): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch (err) {
    return `body is not UTF-8 JSON: ${(err as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return `body ${showValue(v)} is not a JSON object`;
  }
  return v as Record<string, unknown>;
}

/** A validated FillMessage, or a detail naming the bad field and value. */
export function parseFill(data: Uint8Array): FillMessage | string {
  const o = parseObject(data);
  if (typeof o === 'string') return o;
  const { signalId, sym, side, qty, px, ts } = o;
  if (typeof signalId !== 'string' || signalId === '') {
    return `field signalId = ${showValue(signalId)} is not a non-empty string`;
  }
  if (typeof sym !== 'string' || !isToken(sym)) {
    return `field sym = ${showValue(sym)} is not a token [A-Za-z0-9_-]+`;
  }
  if (side !== 'buy' && side !== 'sell')
    return `field side = ${showValue(side)} is not buy or sell`;
  if (typeof qty !== 'number' || !Number.isFinite(qty) || qty <= 0) {
    return `field qty = ${showValue(qty)} is not a finite number > 0`;
  }
  if (typeof px !== 'number' || !Number.isFinite(px) || px <= 0) {
    return `field px = ${showValue(px)} is not a finite number > 0`;
  }
  if (typeof ts !== 'number' || !Number.isFinite(ts)) {
    return `field ts = ${showValue(ts)} is not a finite number`;
  }
  return { signalId, sym, side, qty, px, ts };
}

/** A validated RiskControlMessage, or a detail naming the bad field and value. */
export function parseControl(data: Uint8Array): RiskControlMessage | string {
  const o = parseObject(data);
  if (typeof o === 'string') return o;
  const { by, reason } = o;
  for (const [name, v] of [
    ['by', by],
    ['reason', reason],
  ] as const) {
    if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_CONTROL_TEXT) {
      return `field ${name} = ${showValue(v)} is not a non-empty string of at most ${MAX_CONTROL_TEXT} characters`;
    }
  }
  const from = o['from'];
  if (from === undefined) return { by: by as string, reason: reason as string };
  if (typeof from !== 'string' || from.trim() === '' || from.length > MAX_CONTROL_TEXT) {
    return `field from = ${showValue(from)} is not a non-empty string of at most ${MAX_CONTROL_TEXT} characters`;
  }
  return { by: by as string, reason: reason as string, from };
}
