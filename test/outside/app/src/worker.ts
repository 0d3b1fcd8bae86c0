// src/worker.ts: the job queue on the app's database, and a worker
import { createJobQueue, handleMutateRequest } from '@reprise/server';
import { createPostgresJsDatabase } from '@reprise/server/postgres-js';
import postgres from 'postgres';
import { jobs, serverMutators } from './jobs.js';
import { schema } from './schema.js';

const url = process.env.DATABASE_URL!;
const db = createPostgresJsDatabase(postgres(url));
// graphile-worker stores and runs the jobs, over connections of its own to the same database.
const queue = createJobQueue({ db, jobs, connectionString: url });
await queue.migrate(); // graphile-worker's own migrations (schema "graphile_worker")
// In the app server, or alone in a process of its own: as many workers as you like.
const worker = await queue.startWorker({ concurrency: 4 });
process.once('SIGTERM', () => void worker.stop()); // lets running jobs finish

export const mutate = (request: Request, userID: string) =>
  handleMutateRequest({
    db,
    schema,
    mutators: serverMutators,
    jobs: queue,
    request,
    userID,
    context: { userID },
  });
