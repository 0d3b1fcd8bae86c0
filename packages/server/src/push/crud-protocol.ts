// crud/: the CRUD endpoint, for clients that write plain row operations instead of named
// mutators: PowerSync upload batches and Prisma IDB outbox events. The protocol (this
// file) reads both shapes into one list of operations; the row validator checks them
// against the schema; the processor applies them in order, once each, through the same
// table writer and write policy as `tx.mutate`.

import { describeIssues, MAX_ID_LENGTH } from '@reprise/shared';
import { z } from 'zod';

/** One operation of a PowerSync upload (`CrudEntry.toJSON()`, or `{op, table, id, data}`). */
export const powerSyncOpSchema = z.object({
  op: z.enum(['PUT', 'PATCH', 'DELETE']),
  /** The table; `type` is the name `CrudEntry.toJSON()` gives it. */
  table: z.string().min(1).optional(),
  type: z.string().min(1).optional(),
  id: z.union([z.string().min(1), z.number()]),
  data: z.record(z.string(), z.unknown()).nullish(),
  /** The client's sequence number of the operation; with `clientID`, makes it idempotent. */
  op_id: z.number().int().nonnegative().optional(),
});

// Ids are stored in the receipts' primary key: one longer than a push's client id would
// fail the index (a 503 the client could only resend forever), so it is a 400 instead.
const idText = z.string().min(1).max(MAX_ID_LENGTH);

/** A PowerSync upload: `{clientID?, batch: [...]}`. */
export const powerSyncBodySchema = z.object({
  clientID: idText.optional(),
  batch: z.array(powerSyncOpSchema),
});

/** One Prisma IDB outbox event; its other fields (createdAt, tries…) are ignored. */
export const outboxEventSchema = z.object({
  id: idText,
  entityType: z.string().min(1),
  operation: z.enum(['create', 'update', 'delete']),
  payload: z.record(z.string(), z.unknown()),
  entityKeyPath: z.array(z.union([z.string(), z.number()])).optional(),
});

/** A Prisma IDB push: `{events: [...]}`, with the client's id when it sends one. */
export const outboxBodySchema = z.object({
  clientId: z.string().max(MAX_ID_LENGTH).optional(),
  events: z.array(outboxEventSchema),
});

export type PowerSyncOp = z.infer<typeof powerSyncOpSchema>;
export type OutboxEvent = z.infer<typeof outboxEventSchema>;

/** A CRUD operation as the processor, `scopeKey` and `customValidation` see it. */
export interface CrudOperation {
  /** PowerSync's `PUT`/`PATCH`/`DELETE`, or an outbox event's `create`/`update`/`delete`. */
  readonly op: 'PUT' | 'PATCH' | 'DELETE' | 'create' | 'update' | 'delete';
  /** The table as the client named it. */
  readonly table: string;
  /** The row's values: PowerSync's `data` (with `id`), an event's `payload`. */
  readonly data: Readonly<Record<string, unknown>>;
  /** PowerSync's row id; for an event, undefined (the key is in `data`). */
  readonly id: string | number | undefined;
  /** What makes a resend recognisable: `op_id`, or the event's `id`. */
  readonly opID: string | undefined;
  /** The operation exactly as received. */
  readonly source: PowerSyncOp | OutboxEvent;
}

/** A CRUD body read into operations, or why it cannot be. */
export type ReadCrudBody =
  | {
      readonly ok: true;
      readonly shape: 'powersync' | 'prisma-idb';
      readonly clientID: string;
      readonly operations: CrudOperation[];
    }
  | { readonly ok: false; readonly status: 400 | 413; readonly message: string };

const SHAPES = 'a PowerSync upload {batch: [...]} or a Prisma IDB push {events: [...]}';

/**
 * Reads either body shape: `{batch}` (PowerSync) or `{events}` (Prisma IDB). More than
 * `maxOperations` is a 413, anything else malformed a 400 naming the field.
 *
 * @example
 * const read = readCrudBody({batch: [{op: 'PUT', table: 'todo', id: 't1', data: {title: 'x'}}]}, 100);
 */
export function readCrudBody(body: unknown, maxOperations: number): ReadCrudBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, status: 400, message: `The body must be ${SHAPES}` };
  }
  const fields = body as Record<string, unknown>;
  const isBatch = 'batch' in fields;
  const isEvents = 'events' in fields;
  if (isBatch === isEvents) {
    const has = isBatch ? 'both "batch" and "events"' : 'neither "batch" nor "events"';
    return { ok: false, status: 400, message: `The body must be ${SHAPES}; it has ${has}` };
  }
  const list = isBatch ? fields.batch : fields.events;
  if (Array.isArray(list) && list.length > maxOperations) {
    return {
      ok: false,
      status: 413,
      message: `The body carries ${list.length} operations; at most ${maxOperations} are accepted`,
    };
  }
  return isBatch ? readPowerSync(body) : readOutbox(body);
}

function readPowerSync(body: unknown): ReadCrudBody {
  const parsed = powerSyncBodySchema.safeParse(body);
  if (!parsed.success) {
    return { ok: false, status: 400, message: `Bad PowerSync upload: ${describe(parsed.error)}` };
  }
  const { clientID, batch } = parsed.data;
  const operations: CrudOperation[] = [];
  for (const [i, op] of batch.entries()) {
    const table = op.table ?? op.type;
    if (table === undefined) {
      return { ok: false, status: 400, message: `Bad PowerSync upload: batch.${i}: no "table"` };
    }
    if (op.table !== undefined && op.type !== undefined && op.table !== op.type) {
      const message = `Bad PowerSync upload: batch.${i}: "table" and "type" name different tables`;
      return { ok: false, status: 400, message };
    }
    if (op.op_id !== undefined && clientID === undefined) {
      const message = `Bad PowerSync upload: batch.${i} has an op_id, so the body needs the "clientID" it counts for`;
      return { ok: false, status: 400, message };
    }
    operations.push({
      op: op.op,
      table,
      id: op.id,
      data: op.data ?? {},
      opID: op.op_id === undefined ? undefined : String(op.op_id),
      source: op,
    });
  }
  return { ok: true, shape: 'powersync', clientID: clientID ?? '', operations };
}

function readOutbox(body: unknown): ReadCrudBody {
  const parsed = outboxBodySchema.safeParse(body);
  if (!parsed.success) {
    return { ok: false, status: 400, message: `Bad outbox push: ${describe(parsed.error)}` };
  }
  const operations = parsed.data.events.map(
    (event): CrudOperation => ({
      op: event.operation,
      table: event.entityType,
      id: undefined,
      data: event.payload,
      opID: event.id,
      source: event,
    }),
  );
  return { ok: true, shape: 'prisma-idb', clientID: parsed.data.clientId ?? '', operations };
}

function describe(error: z.ZodError): string {
  const issues = error.issues.slice(0, 5);
  const more = error.issues.length > issues.length ? ` (and ${error.issues.length - 5} more)` : '';
  return describeIssues(issues) + more;
}
