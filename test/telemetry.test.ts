import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  createChangeStreams,
  type Database,
  type DatabaseTransaction,
  silentLogger,
} from '@reprise/server';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADAPTERS, type AdapterFixture } from './fixtures/adapters';
import { schema } from './fixtures/app';
import { pull } from './fixtures/pull';
import { post, pushBody } from './fixtures/push';

// The OpenTelemetry spans and metrics of push, pull and named streams, read back through
// the SDK's in-memory exporters (a registered provider, as an app's would be).

const spans = new InMemorySpanExporter();
let metricExporter: InMemoryMetricExporter;
let reader: PeriodicExportingMetricReader;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  );
});
beforeEach(() => {
  // A fresh meter provider per test, so each test's counts start at zero.
  metrics.disable();
  metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  spans.reset();
});
afterEach(async () => {
  await reader.shutdown();
});
afterAll(() => {
  metrics.disable();
  trace.disable();
  context.disable();
});

/** The data points of each metric, by name, as the reader collects them now. */
async function collect(): Promise<Map<string, DataPoint<unknown>[]>> {
  metricExporter.reset();
  await reader.forceFlush();
  const byName = new Map<string, DataPoint<unknown>[]>();
  for (const resource of metricExporter.getMetrics()) {
    for (const scope of resource.scopeMetrics) {
      expect(scope.scope.name).toBe('@reprise/server');
      for (const metric of scope.metrics) {
        byName.set(metric.descriptor.name, metric.dataPoints as DataPoint<unknown>[]);
      }
    }
  }
  return byName;
}

/** `{attribute value: point value}` of a counter or gauge, keyed by one attribute. */
function valuesBy(points: DataPoint<unknown>[] | undefined, attribute: string) {
  return Object.fromEntries(
    (points ?? []).map((p) => [String(p.attributes[attribute]), p.value as number]),
  );
}

const named = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

const serializationFailure = () =>
  Object.assign(new Error('could not serialize access due to concurrent update'), {
    code: '40001',
  });

/** Fails the next `remaining` statements that match, as a busy server would. */
function faulty(db: Database<any>, faults: { match: RegExp; remaining: number }): Database<any> {
  const wrap = (tx: DatabaseTransaction<any>): DatabaseTransaction<any> => ({
    query: async (text, params) => {
      if (faults.remaining > 0 && faults.match.test(text)) {
        faults.remaining--;
        throw serializationFailure();
      }
      return tx.query(text, params);
    },
    savepoint: (fn) => tx.savepoint((inner) => fn(wrap(inner))),
    wrappedTransaction: tx.wrappedTransaction,
  });
  return { ...db, transaction: (fn, options) => db.transaction((tx) => fn(wrap(tx)), options) };
}

const create = (id: number) => ({
  id,
  name: 'issue.create',
  args: { id: `i${id}`, title: `Issue ${id}` },
});

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;

describe('telemetry of push and pull', () => {
  let fx: AdapterFixture;
  beforeAll(async () => {
    fx = await pglite.create();
  });
  beforeEach(async () => {
    await fx.reset();
  });
  afterAll(async () => {
    await fx.close();
  });

  it('a push is a span over its transaction attempts, and counts its mutations by outcome', async () => {
    const body = pushBody([
      create(1),
      { id: 2, name: 'issue.createThenRefuse', args: { id: 'x' } },
      create(3),
    ]);
    expect((await post(fx, body)).status).toBe(200);
    expect((await post(fx, body)).status).toBe(200); // all three already processed

    const pushes = named('reprise.push');
    expect(pushes).toHaveLength(2);
    for (const push of pushes) {
      expect(push.attributes).toMatchObject({
        'reprise.client_group.id': 'cg1',
        'reprise.push.mutations': 3,
        'http.response.status_code': 200,
      });
    }
    expect(pushes[0]!.attributes).toMatchObject({
      'reprise.push.applied': 2,
      'reprise.push.refused': 1,
      'reprise.push.already_processed': 0,
    });
    expect(pushes[1]!.attributes).toMatchObject({ 'reprise.push.already_processed': 3 });
    const attempts = named('reprise.push.transaction');
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    const pushIDs = pushes.map((s) => s.spanContext().spanId);
    for (const attempt of attempts) {
      expect(pushIDs).toContain(parentOf(attempt));
      expect(attempt.attributes).toMatchObject({ 'db.system.name': 'postgresql' });
    }

    const collected = await collect();
    expect(valuesBy(collected.get('reprise.mutations'), 'reprise.mutation.outcome')).toEqual({
      applied: 2,
      refused: 1,
      already_processed: 3,
    });
    const [duration] = collected.get('reprise.push.duration')!;
    expect((duration!.value as Histogram).count).toBe(2);
    expect(duration!.attributes).toEqual({ 'http.response.status_code': 200 });
    expect(collected.get('reprise.transaction.retries')).toBeUndefined();
  });

  // With neither provider and no trace around it, a push makes no span at all (a shortcut);
  // either provider alone must still see everything it would with both.
  it('with only a meter provider registered, a push is still counted', async () => {
    trace.disable();
    try {
      expect((await post(fx, pushBody([create(1)]))).status).toBe(200);
    } finally {
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
      );
    }
    expect(spans.getFinishedSpans()).toHaveLength(0);
    const collected = await collect();
    expect(valuesBy(collected.get('reprise.mutations'), 'reprise.mutation.outcome')).toEqual({
      applied: 1,
    });
    const [duration] = collected.get('reprise.push.duration')!;
    expect((duration!.value as Histogram).count).toBe(1);
  });

  it('with only a tracer provider registered, a push is still a span over its attempt', async () => {
    metrics.disable();
    expect((await post(fx, pushBody([create(1)]))).status).toBe(200);
    const [push] = named('reprise.push');
    expect(push?.attributes).toMatchObject({ 'reprise.push.applied': 1 });
    const [attempt] = named('reprise.push.transaction');
    expect(parentOf(attempt!)).toBe(push!.spanContext().spanId);
  });

  it('a retried attempt is a failed span with the SQLSTATE, and counts as a retry', async () => {
    const db = faulty(fx.db, { match: /INSERT INTO "issue"/, remaining: 2 });
    const res = await post(fx, pushBody([create(1)]), {
      db,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    expect(res.status).toBe(200);
    const attempts = named('reprise.push.transaction');
    expect(attempts.map((s) => s.attributes['reprise.transaction.attempt'])).toEqual([1, 2, 3]);
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual(['40001', '40001', undefined]);
    expect(attempts.map((s) => s.status.code)).toEqual([2, 2, 0]); // ERROR, ERROR, UNSET
    const collected = await collect();
    expect(
      valuesBy(collected.get('reprise.transaction.retries'), 'reprise.transaction.kind'),
    ).toEqual({ push: 2 });
    expect(collected.get('reprise.push.unavailable')).toBeUndefined();
  });

  it('a push answered 503 fails its span and counts as unavailable', async () => {
    const db = faulty(fx.db, { match: /INSERT INTO "issue"/, remaining: 1000 });
    const res = await post(fx, pushBody([create(1)]), {
      db,
      retry: { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
    });
    expect(res.status).toBe(503);
    const [push] = named('reprise.push');
    expect(push!.attributes).toMatchObject({
      'http.response.status_code': 503,
      'error.type': '503',
    });
    expect(push!.status.code).toBe(2);
    const collected = await collect();
    expect(valuesBy(collected.get('reprise.push.unavailable'), 'none')).toEqual({
      undefined: 1,
    });
    expect(
      valuesBy(collected.get('reprise.transaction.retries'), 'reprise.transaction.kind'),
    ).toEqual({ push: 2 });
    const [duration] = collected.get('reprise.push.duration')!;
    expect(duration!.attributes).toEqual({ 'http.response.status_code': 503 });
  });

  it('a pull is a span over its transaction, with the reset and the patch size', async () => {
    await post(fx, pushBody([create(1), create(2)]));
    spans.reset();
    const res = await pull(fx, null);
    expect(res.status).toBe(200);
    const [span] = named('reprise.pull');
    expect(span!.attributes).toMatchObject({
      'reprise.client_group.id': 'alice-cg',
      'reprise.pull.reset': 'no cookie',
      'reprise.pull.operations': res.body.patch.length,
      'http.response.status_code': 200,
    });
    expect(res.body.patch.length).toBe(3); // clear + two puts
    const [attempt] = named('reprise.pull.transaction');
    expect(parentOf(attempt!)).toBe(span!.spanContext().spanId);
    const [duration] = (await collect()).get('reprise.pull.duration')!;
    expect((duration!.value as Histogram).count).toBe(1);

    spans.reset();
    const again = await pull(fx, res.body.cookie);
    const [incremental] = named('reprise.pull');
    expect(incremental!.attributes['reprise.pull.reset']).toBeUndefined();
    expect(incremental!.attributes['reprise.pull.operations']).toBe(again.body.patch.length);
  });

  it('a bad request still ends its span, with its 4xx status', async () => {
    const res = await post(fx, { nonsense: true });
    expect(res.status).toBe(400);
    const [push] = named('reprise.push');
    expect(push!.attributes['http.response.status_code']).toBe(400);
    expect(push!.status.code).toBe(0);
  });
});

for (const adapter of ADAPTERS.filter((a) => !a.name.startsWith('drizzle'))) {
  const title = adapter.unavailable
    ? `${adapter.name} [skipped: ${adapter.unavailable}]`
    : adapter.name;
  describe.skipIf(adapter.unavailable !== undefined)(`stream telemetry: ${title}`, () => {
    let fx: AdapterFixture;
    beforeAll(async () => {
      fx = await adapter.create();
    });
    afterAll(async () => {
      await fx?.close();
    });

    it('reprise.stream.pending counts the changes each named stream has still to read', async () => {
      await using changes = createChangeStreams({
        db: fx.db,
        schema,
        pollIntervalMs: 20,
        logger: silentLogger,
      });
      const stream = await changes.stream({ name: 'indexer' });
      await post(fx, pushBody([create(1), create(2), create(3)]));
      let pending = valuesBy(
        (await collect()).get('reprise.stream.pending'),
        'reprise.stream.name',
      );
      expect(pending).toEqual({ indexer: 3 });

      for (let i = 0; i < 3; i++) await stream.next();
      await stream.ack(); // every event handed out so far
      pending = valuesBy((await collect()).get('reprise.stream.pending'), 'reprise.stream.name');
      expect(pending).toEqual({ indexer: 0 });
    });
  });
}
