import {
  type Attributes,
  type Counter,
  context,
  createNoopMeter,
  type Histogram,
  isSpanContextValid,
  type MeterProvider,
  metrics,
  type ObservableResult,
  ProxyTracerProvider,
  type Span,
  type SpanOptions,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

// OpenTelemetry through @opentelemetry/api: spans for pushes, pulls and their transaction
// attempts, and the push and pull metrics. Every call is a no-op until the app registers a
// tracer or meter provider (the OpenTelemetry SDK does). Names follow the semantic
// conventions where one exists (`db.system.name`, `error.type`, `http.response.status_code`,
// durations in seconds); the rest are `reprise.*`. The README lists them all.

const SCOPE = '@reprise/server';
const SCOPE_VERSION = '0.1.0';
const DB_SYSTEM = { 'db.system.name': 'postgresql' } as const;
/** The semantic conventions' advice for request durations, in seconds. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

interface Instruments {
  readonly mutations: Counter;
  readonly retries: Counter;
  readonly unavailable: Counter;
  readonly pushDuration: Histogram;
  readonly pullDuration: Histogram;
}

let cached: { provider: MeterProvider; instruments: Instruments; noop: boolean } | undefined;

/**
 * The instruments of the global meter provider. Made again when the app registers another
 * provider: unlike tracers, meters of the no-op provider do not follow a later registration.
 */
function instruments(): Instruments {
  return meterState().instruments;
}

function meterState(): NonNullable<typeof cached> {
  const provider = metrics.getMeterProvider();
  if (cached?.provider === provider) return cached;
  const meter = provider.getMeter(SCOPE, SCOPE_VERSION);
  const duration = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  const made: Instruments = {
    mutations: meter.createCounter('reprise.mutations', {
      description: 'Mutations a push processed, by outcome',
      unit: '{mutation}',
    }),
    retries: meter.createCounter('reprise.transaction.retries', {
      description: 'Transaction attempts run again after a transient database failure',
      unit: '{retry}',
    }),
    unavailable: meter.createCounter('reprise.push.unavailable', {
      description: 'Pushes answered 503: the database failed, nothing from there on applied',
      unit: '{push}',
    }),
    pushDuration: duration('reprise.push.duration', 'Time to process a push'),
    pullDuration: duration('reprise.pull.duration', 'Time to process a pull'),
  };
  cached = { provider, instruments: made, noop: meter === createNoopMeter() };
  return cached;
}

/**
 * True when nothing would see a span or a metric: no tracer provider and no meter provider
 * registered, and no span around the call. A push then skips making them, which costs a
 * one-mutation push more than its own bookkeeping.
 */
function unobserved(): boolean {
  const provider = trace.getTracerProvider();
  // Without a registered provider the global one is the API's proxy, with no delegate.
  if (!(provider instanceof ProxyTracerProvider)) return false;
  if (provider.getDelegateTracer(SCOPE, SCOPE_VERSION) !== undefined) return false;
  return meterState().noop && trace.getSpan(context.active()) === undefined;
}

/** The observation of a push or pull nothing observes. */
const UNOBSERVED: PushObservation = { annotate() {}, counted() {} };

function tracer() {
  return trace.getTracer(SCOPE, SCOPE_VERSION);
}

/**
 * `startActiveSpan`, without making the span active when there is no trace at all (no
 * tracer provider registered and no trace around the call): the span then records
 * nothing and carries nothing, and a push skips the context copy that activating it costs.
 */
function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(name, options);
  if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return fn(span);
  return context.with(trace.setSpan(context.active(), span), fn, undefined, span);
}

/** `error.type`: the SQLSTATE or driver code when there is one, else the class name. */
function errorType(error: unknown): string {
  const { sqlState, code } = (error ?? {}) as { sqlState?: unknown; code?: unknown };
  if (typeof sqlState === 'string') return sqlState;
  // A driver's own error, not yet wrapped: postgres.js and node-postgres put it in `code`.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'Error';
}

function failSpan(span: Span, error: unknown): void {
  span.setAttribute('error.type', errorType(error));
  span.setStatus({ code: SpanStatusCode.ERROR });
  if (error instanceof Error) span.recordException(error);
}

/** What a request span learns while it runs. */
export interface RequestObservation {
  /** Attributes of the request's span, e.g. the client group once the body is read. */
  annotate(attributes: Attributes): void;
}

/** A push's counts of mutations by outcome, as the handler logs them. */
export interface PushCounts {
  readonly applied: number;
  readonly alreadyProcessed: number;
  readonly appErrors: number;
}

/** What a push span learns while it runs. */
export interface PushObservation extends RequestObservation {
  /** Counts the push's mutations by outcome (`reprise.mutations`). */
  counted(counts: PushCounts): void;
}

async function observeRequest<R extends { readonly status: number }, O>(
  kind: 'push' | 'pull',
  observation: (span: Span) => O,
  run: (observed: O) => Promise<R>,
): Promise<R> {
  const started = performance.now();
  return inSpan(`reprise.${kind}`, {}, async (span) => {
    let status: number | undefined;
    try {
      const result = await run(observation(span));
      status = result.status;
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) {
        span.setAttribute('error.type', String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      return result;
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
      const attributes = status === undefined ? {} : { 'http.response.status_code': status };
      const seconds = (performance.now() - started) / 1000;
      const made = instruments();
      (kind === 'push' ? made.pushDuration : made.pullDuration).record(seconds, attributes);
      if (kind === 'push' && status === 503) made.unavailable.add(1);
    }
  });
}

/**
 * Runs one push inside a `reprise.push` span, and records its duration, its mutations by
 * outcome and whether it answered 503.
 *
 * @example
 * return observePush(async (observed) => { observed.annotate({...}); return result; });
 */
export function observePush<R extends { readonly status: number }>(
  run: (observed: PushObservation) => Promise<R>,
): Promise<R> {
  if (unobserved()) return run(UNOBSERVED);
  return observeRequest(
    'push',
    (span) => ({
      annotate: (attributes: Attributes) => span.setAttributes(attributes),
      counted(counts: PushCounts) {
        span.setAttributes({
          'reprise.push.applied': counts.applied,
          'reprise.push.already_processed': counts.alreadyProcessed,
          'reprise.push.refused': counts.appErrors,
        });
        const { mutations } = instruments();
        const add = (n: number, outcome: string) => {
          if (n > 0) mutations.add(n, { 'reprise.mutation.outcome': outcome });
        };
        add(counts.applied, 'applied');
        add(counts.appErrors, 'refused');
        add(counts.alreadyProcessed, 'already_processed');
      },
    }),
    run,
  );
}

/**
 * Runs one pull inside a `reprise.pull` span, and records its duration.
 *
 * @example
 * return observePull(async (observed) => { observed.annotate({'reprise.pull.reset': true}); return result; });
 */
export function observePull<R extends { readonly status: number }>(
  run: (observed: RequestObservation) => Promise<R>,
): Promise<R> {
  if (unobserved()) return run(UNOBSERVED);
  return observeRequest(
    'pull',
    (span) => ({ annotate: (attributes: Attributes) => span.setAttributes(attributes) }),
    run,
  );
}

/**
 * Runs one attempt of a push's or pull's transaction inside a `reprise.<kind>.transaction`
 * span; an attempt after the first counts as a retry (`reprise.transaction.retries`).
 *
 * @example
 * await withRetries(policy, (attempt) => observeAttempt('push', attempt, () => db.transaction(work)));
 */
export function observeAttempt<T>(
  kind: 'push' | 'pull',
  attempt: number,
  run: () => Promise<T>,
): Promise<T> {
  if (unobserved()) return run();
  if (attempt > 1) instruments().retries.add(1, { 'reprise.transaction.kind': kind });
  const attributes = { ...DB_SYSTEM, 'reprise.transaction.attempt': attempt };
  return inSpan(`reprise.${kind}.transaction`, { attributes }, async (span) => {
    try {
      return await run();
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * Reports `reprise.stream.pending`, an observable gauge of the changes each named stream
 * has still to read, from `read` at every collection of the meter provider registered now.
 * Returns the function that stops reporting.
 *
 * @example
 * const stop = observePendingChanges(() => pendingChanges(db, tables), logger);
 */
export function observePendingChanges(
  read: () => Promise<ReadonlyMap<string, number>>,
  onError: (error: unknown) => void,
): () => void {
  const meter = metrics.getMeterProvider().getMeter(SCOPE, SCOPE_VERSION);
  const gauge = meter.createObservableGauge('reprise.stream.pending', {
    description: 'Changes committed after a named stream’s acknowledged position',
    unit: '{change}',
  });
  const callback = async (result: ObservableResult) => {
    try {
      for (const [name, pending] of await read()) {
        result.observe(pending, { 'reprise.stream.name': name });
      }
    } catch (error) {
      // Nothing is reported this time; the next collection tries again.
      onError(error);
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
