import { createMemoryStorage } from '@reprise/client';
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import { clientIssues, serverIssues, useClients } from './fixtures/client';

// The client against the real handlers in-process, on PGlite and (with DATABASE_URL) on the
// real server: convergence, offline, refusals, rebase, lost responses and reloads.

const KINDS = ADAPTERS.filter((a) => a.name === 'pglite' || a.name === 'postgres.js (real server)');

for (const kind of KINDS) {
  describe.skipIf(kind.unavailable)(
    `client against ${kind.name}${kind.unavailable ? ` (skipped: ${kind.unavailable})` : ''}`,
    () => {
      const h = useClients(kind);
      const { open } = h;

      it('two clients converge on the server state', async () => {
        const a = await open();
        const b = await open();
        a.mutate.issue.create({ id: 'i1', title: 'From A' });
        b.mutate.issue.create({ id: 'i2', title: 'From B' });
        await Promise.all([a.idle(), b.idle()]);
        await Promise.all([a.pull(), b.pull()]);
        const expected = await serverIssues(h.fx);
        expect(expected.map((r) => r.id)).toEqual(['i1', 'i2']);
        expect(await clientIssues(a)).toEqual(expected);
        expect(await clientIssues(b)).toEqual(expected);
      });

      it('reports each change of the pending count, up on mutate and down on confirmation', async () => {
        const a = await open();
        await a.idle();
        const seen: number[] = [];
        a.onPendingChange((pending) => seen.push(pending));
        await a.mutate.issue.create({ id: 'i1', title: 'One' }).client;
        await a.mutate.issue.create({ id: 'i2', title: 'Two' }).client;
        await a.idle();
        expect(seen.slice(0, 2)).toEqual([1, 2]);
        expect(seen.at(-1)).toBe(0);
        expect(a.pending).toBe(0);
      });

      it('applies mutations while offline and pushes them when back online', async () => {
        const a = await open();
        await a.idle();
        h.server.down = true;
        await a.mutate.issue.create({ id: 'i1', title: 'Offline' }).client;
        await a.pull();
        expect(a.online).toBe(false);
        expect(a.pending).toBe(1);
        expect((await clientIssues(a)).map((r) => r.title)).toEqual(['Offline']);
        h.server.down = false;
        a.setOnline(true);
        await a.idle();
        expect(a.pending).toBe(0);
        expect(a.online).toBe(true);
        expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
      });

      it('drops the one mutation of three the server refuses and reports why', async () => {
        const a = await open();
        const settled: string[] = [];
        a.onMutationSettled((s) => settled.push(`${s.name}:${s.outcome.ok}`));
        a.mutate.issue.create({ id: 'i1', title: 'one' });
        const refused = a.mutate.review.refuse({ id: 'i2' });
        await a.mutate.issue.create({ id: 'i3', title: 'three' }).client;
        expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1', 'i2', 'i3']);
        const outcome = await refused.server;
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect(outcome.error.message).toBe('Refused');
        await a.idle();
        expect((await clientIssues(a)).map((r) => r.id)).toEqual(['i1', 'i3']);
        expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
        expect(settled).toEqual(['issue.create:true', 'review.refuse:false', 'issue.create:true']);
      });

      it('replays pending mutations on top of another client’s concurrent change', async () => {
        const a = await open();
        const b = await open();
        await a.mutate.issue.create({ id: 'i1', title: 'Original' }).client;
        await a.idle();
        await b.pull();
        h.server.down = true;
        // A's rename stays pending while B's change lands first on the server.
        await a.mutate.issue.rename({ id: 'i1', title: 'Renamed by A' }).client;
        h.server.down = false;
        await b.mutate.issue.create({ id: 'i2', title: 'From B' }).client;
        await b.idle();
        await a.pull();
        expect((await clientIssues(a)).map((r) => `${r.id}:${r.title}`)).toEqual([
          'i1:Renamed by A',
          'i2:From B',
        ]);
        await a.idle();
        await b.pull();
        expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
        expect(await clientIssues(b)).toEqual(await serverIssues(h.fx));
      });

      it('a duplicate push after a lost response does no harm', async () => {
        const a = await open();
        await a.idle();
        h.server.dropPushResponses = 1;
        const call = a.mutate.issue.create({ id: 'i1', title: 'Once' });
        await a.idle();
        expect(h.server.pushes).toBeGreaterThanOrEqual(2);
        expect(await call.server).toEqual({ ok: true, data: undefined });
        expect(await serverIssues(h.fx)).toHaveLength(1);
        expect(await clientIssues(a)).toEqual(await serverIssues(h.fx));
      });

      it('a reload while offline keeps the queue and the client id', async () => {
        const storage = createMemoryStorage();
        const a = await open({ storage });
        await a.idle();
        h.server.down = true;
        await a.mutate.issue.create({ id: 'i1', title: 'Queued' }).client;
        await a.close();
        const reloaded = await open({ storage });
        expect(reloaded.clientID).toBe(a.clientID);
        expect(reloaded.pending).toBe(1);
        expect((await clientIssues(reloaded)).map((r) => r.id)).toEqual(['i1']);
        h.server.down = false;
        reloaded.setOnline(true);
        await reloaded.idle();
        expect(await clientIssues(reloaded)).toEqual(await serverIssues(h.fx));
        expect(await serverIssues(h.fx)).toHaveLength(1);
      });

      it('a second tab forks the group state under a new client id', async () => {
        const storage = createMemoryStorage();
        const a = await open({ storage });
        await a.mutate.issue.create({ id: 'i1', title: 'Seen' }).client;
        await a.idle();
        await a.pull();
        h.server.down = true;
        const tab = await open({ storage });
        expect(tab.clientID).not.toBe(a.clientID);
        expect(tab.clientGroupID).toBe(a.clientGroupID);
        expect((await clientIssues(tab)).map((r) => r.id)).toEqual(['i1']);
      });
    },
  );
}
