// @vitest-environment happy-dom
import type { Client, MaterializedView } from '@reprise/client';
import {
  type QueryStatus,
  RepriseProvider,
  useClient,
  useLastRefusal,
  useMutate,
  useOnline,
  usePending,
  useQuery,
} from '@reprise/react';
import type { AnyMutators } from '@reprise/shared';
import { StrictMode, startTransition, useLayoutEffect } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { ADAPTERS } from './fixtures/adapters';
import { type TestClient, useClients } from './fixtures/client';
import type { querySchema } from './fixtures/query-schema';

// The React bindings, rendered by react-dom into a happy-dom document, on real clients
// talking to the in-process server over PGlite.

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;
/** Waits for React to render (slow on a loaded machine: the default 1 s is not enough). */
const eventually = (check: () => void) => vi.waitFor(check, { timeout: 10_000 });

const roots: Root[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) root.unmount();
  document.body.innerHTML = '';
});

function mount(client: TestClient, element: React.ReactNode, strict = false) {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  roots.push(root);
  const tree = <RepriseProvider client={client}>{element}</RepriseProvider>;
  root.render(strict ? <StrictMode>{tree}</StrictMode> : tree);
  return { container, root };
}

/** Counts the live views a query opens and the subscriptions on them. */
function counted<Q extends { materialize(): MaterializedView<any> }>(query: Q) {
  const counts = { views: 0, subscribers: 0, materialized: 0 };
  const wrapped = new Proxy(query, {
    get(target, prop, receiver) {
      if (prop !== 'materialize') return Reflect.get(target, prop, receiver);
      return () => {
        const view = target.materialize();
        counts.views++;
        counts.materialized++;
        return {
          get data() {
            return view.data;
          },
          subscribe(listener: (data: unknown) => void) {
            counts.subscribers++;
            const stop = view.subscribe(listener);
            return () => {
              counts.subscribers--;
              stop();
            };
          },
          destroy() {
            counts.views--;
            view.destroy();
          },
        };
      };
    },
  });
  return { query: wrapped, counts };
}

type IssueClient = TestClient;

function Titles({ tag = 'titles' }: { tag?: string }) {
  const client = useClient<IssueClient>();
  const [issues, status] = useQuery(client.query.issue.orderBy('id'));
  expectTypeOf(issues[0]?.title).toEqualTypeOf<string | undefined>();
  expectTypeOf(status).toEqualTypeOf<QueryStatus>();
  return (
    <p data-testid={tag} data-status={status.type}>
      {issues.map((i) => i.title).join(',')}
    </p>
  );
}

const text = (container: HTMLElement, tag = 'titles') =>
  container.querySelector(`[data-testid="${tag}"]`)?.textContent;
const statusOf = (container: HTMLElement, tag = 'titles') =>
  container.querySelector(`[data-testid="${tag}"]`)?.getAttribute('data-status');

describe('@reprise/react', () => {
  const h = useClients(pglite);

  it('useQuery renders the rows and follows optimistic writes and other clients’ changes', async () => {
    const a = await h.open();
    const b = await h.open();
    const { container } = mount(a, <Titles />);
    await eventually(() => expect(statusOf(container)).toBe('complete'));
    expect(text(container)).toBe('');
    await a.mutate.issue.create({ id: 'i1', title: 'mine' }).client;
    await eventually(() => expect(text(container)).toBe('mine'));
    await b.mutate.issue.create({ id: 'i2', title: 'theirs' }).client;
    await b.idle();
    await a.pull();
    await eventually(() => expect(text(container)).toBe('mine,theirs'));
  });

  it("the status is 'unknown' until a pull is applied, then 'complete'", async () => {
    h.server.down = true;
    const a = await h.open();
    await a.mutate.issue.create({ id: 'i1', title: 'offline' }).client;
    const { container } = mount(a, <Titles />);
    await eventually(() => expect(text(container)).toBe('offline'));
    expect(statusOf(container)).toBe('unknown');
    expect(a.synced).toBe(false);
    h.server.down = false;
    await a.pull();
    await eventually(() => expect(statusOf(container)).toBe('complete'));
    expect(text(container)).toBe('offline');
  });

  it('.one() gives a row or undefined', async () => {
    const a = await h.open();
    function One() {
      const client = useClient<IssueClient>();
      const [issue] = useQuery(client.query.issue.where('id', 'i1').one());
      expectTypeOf(issue).toEqualTypeOf<
        ReturnType<IssueClient['query']['issue']['one']>['~result']
      >();
      return <p data-testid="one">{issue ? issue.title : 'none'}</p>;
    }
    const { container } = mount(a, <One />);
    await eventually(() => expect(text(container, 'one')).toBe('none'));
    await a.mutate.issue.create({ id: 'i1', title: 'found' }).client;
    await eventually(() => expect(text(container, 'one')).toBe('found'));
  });

  it('takes a query with related rows, on a table that has relationships, typed', () => {
    // The test app's schema has no relationships; this one has: a table's related() then
    // names only its own relationships, and useQuery must still take its queries.
    function Issues({ client }: { client: Client<typeof querySchema, AnyMutators> }) {
      const [issues] = useQuery(client.query.issue.related('comments').orderBy('id'));
      expectTypeOf(issues[0]?.comments[0]?.body).toEqualTypeOf<string | undefined>();
      const [one] = useQuery(client.query.issue.related('owner').one());
      expectTypeOf(one?.owner?.name).toEqualTypeOf<string | undefined>();
      return null;
    }
    expectTypeOf(Issues).toBeFunction();
  });

  it('components asking for the same query share one view, and unmounting releases it', async () => {
    const a = await h.open();
    const { query, counts } = counted(a.query.issue.orderBy('id'));
    let renders = 0;
    function Rows({ tag }: { tag: string }) {
      renders++;
      const [rows] = useQuery(query);
      return <p data-testid={tag}>{rows.length}</p>;
    }
    const { container, root } = mount(
      a,
      <>
        <Rows tag="x" />
        <Rows tag="y" />
      </>,
    );
    await a.mutate.issue.create({ id: 'i1', title: 't' }).client;
    await eventually(() => expect(text(container, 'y')).toBe('1'));
    // Subscriptions happen in passive effects, after the commit that shows the rows.
    await eventually(() => expect(counts).toEqual({ views: 1, subscribers: 1, materialized: 1 }));
    root.unmount();
    expect(counts.subscribers).toBe(0);
    const rendersAtUnmount = renders;
    await a.mutate.issue.create({ id: 'i2', title: 't' }).client;
    await eventually(() => expect(counts.views).toBe(0));
    expect(renders).toBe(rendersAtUnmount);
  });

  it('StrictMode’s double effects leave one subscription, and the view follows writes', async () => {
    const a = await h.open();
    const { query, counts } = counted(a.query.issue.orderBy('id'));
    function Rows() {
      const [rows] = useQuery(query);
      return <p data-testid="rows">{rows.map((r) => r.id).join(',')}</p>;
    }
    const { container } = mount(a, <Rows />, true);
    await a.mutate.issue.create({ id: 'i1', title: 't' }).client;
    await eventually(() => expect(text(container, 'rows')).toBe('i1'));
    await eventually(() => expect(counts.subscribers).toBe(1));
    await a.mutate.issue.create({ id: 'i2', title: 't' }).client;
    await eventually(() => expect(text(container, 'rows')).toBe('i1,i2'));
    expect(counts).toEqual({ views: 1, subscribers: 1, materialized: 1 });
  });

  it('does not tear: a write landing in the middle of a concurrent render shows in all or none', async () => {
    const a = await h.open();
    await a.mutate.issue.create({ id: 'i1', title: 'before' }).client;
    const seenInRender: string[] = [];
    const torn: string[][] = [];
    function Slow({ index }: { index: number }) {
      const client = useClient<IssueClient>();
      const [rows] = useQuery(client.query.issue.where('id', 'i1'));
      const title = rows[0]?.title ?? '';
      seenInRender.push(title);
      // The write starts as the first child renders and lands while React yields between
      // two later ones.
      if (index === 0 && seenInRender.length === 1) {
        setTimeout(() => a.mutate.issue.rename({ id: 'i1', title: 'after' }), 0);
      }
      // Long enough for React to yield to the timer that writes between two children.
      const until = performance.now() + 30;
      while (performance.now() < until) {}
      useLayoutEffect(() => {
        const shown = [...document.querySelectorAll('[data-slow]')].map((e) => e.textContent);
        if (new Set(shown).size > 1) torn.push(shown as string[]);
      });
      return <p data-slow={index}>{title}</p>;
    }
    const { container, root } = mount(a, null);
    startTransition(() =>
      root.render(
        <RepriseProvider client={a}>
          {[0, 1, 2, 3, 4].map((i) => (
            <Slow key={i} index={i} />
          ))}
        </RepriseProvider>,
      ),
    );
    await eventually(() => {
      const shown = [...container.querySelectorAll('[data-slow]')].map((e) => e.textContent);
      expect(shown).toEqual(['after', 'after', 'after', 'after', 'after']);
    });
    // The write did land mid-render: some children rendered with the old title first.
    expect(seenInRender).toContain('before');
    expect(seenInRender).toContain('after');
    expect(torn).toEqual([]);
  });

  it('usePending, useOnline and useLastRefusal follow the queue, the server and its refusals', async () => {
    const a = await h.open();
    const seenRefusals: string[] = [];
    function Status() {
      const pending = usePending();
      const online = useOnline();
      const refusal = useLastRefusal();
      const mutate = useMutate<IssueClient>();
      expectTypeOf(mutate).toEqualTypeOf<IssueClient['mutate']>();
      if (refusal) seenRefusals.push(`${refusal.name}: ${refusal.outcome.error.message}`);
      return (
        <p data-testid="status">
          {pending} {online ? 'online' : 'offline'} {refusal?.outcome.error.message ?? '-'}
        </p>
      );
    }
    const { container } = mount(a, <Status />);
    await eventually(() => expect(text(container, 'status')).toBe('0 online -'));
    h.server.down = true;
    await a.mutate.review.refuse({ id: 'r1' }).client;
    await eventually(() => expect(text(container, 'status')).toBe('1 offline -'));
    h.server.down = false;
    await a.pull();
    await a.idle();
    await eventually(() => expect(text(container, 'status')).toBe('0 online Refused'));
    expect(new Set(seenRefusals)).toEqual(new Set(['review.refuse: Refused']));
  });
});

it('a hook outside a provider says what is missing', async () => {
  function Lonely() {
    usePending();
    return null;
  }
  const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
  const thrown = new Promise<unknown>((resolve) => {
    const root = createRoot(document.createElement('div'), {
      onUncaughtError: (error) => resolve(error),
    });
    roots.push(root);
    root.render(<Lonely />);
  });
  expect(String(await thrown)).toMatch(/inside <RepriseProvider/);
  spy.mockRestore();
});
