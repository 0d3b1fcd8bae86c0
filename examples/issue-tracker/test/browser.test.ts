import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { toNodeHandler } from '@reprise/server/node';
import { createPGliteDatabase } from '@reprise/server/pglite';
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
  type Route,
} from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp, prepareDatabase } from '../src/server';

// The tracker in headless Chromium: the page built by Vite, the server over HTTP on PGlite,
// two users in two browser contexts. Screenshots go to test-artifacts/e2e/.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.REPRISE_REQUIRE_BROWSER) {
  throw new Error(`REPRISE_REQUIRE_BROWSER is set but there is no chromium at ${CHROMIUM}`);
}
const EXAMPLE = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/e2e/', import.meta.url));
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let outDir: string;
let pglite: PGlite;
let app: App;
let server: Server;
let base: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function signIn(name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  contexts.push(context);
  // Fail a step well before the test's own timeout, so the report names the step.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[${name}] page error:`, error));
  await page.goto(base);
  await page.getByTestId('login').locator('input[name=name]').fill(name);
  await page.getByTestId('login').locator('button').click();
  await page.getByTestId('user').filter({ hasText: name }).waitFor();
  return page;
}

function issue(page: Page, title: string) {
  return page.getByTestId('issue').filter({
    has: page.getByTestId('issue-title').getByText(title, { exact: true }),
  });
}

async function shoot(page: Page, name: string) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe.skipIf(!hasChromium)(
  `the tracker in a browser${hasChromium ? '' : ` (SKIPPED: no chromium at ${CHROMIUM})`}`,
  () => {
    let ana: Page;
    let bob: Page;

    beforeAll(async () => {
      outDir = await mkdtemp(join(tmpdir(), 'reprise-page-'));
      await mkdir(ARTIFACTS, { recursive: true });
      await build({
        root: EXAMPLE,
        logLevel: 'warn',
        build: { outDir, emptyOutDir: true, sourcemap: false },
      });
      pglite = new PGlite();
      const db = createPGliteDatabase(pglite);
      await prepareDatabase(db);
      app = createApp({ db, assetsDir: outDir });
      server = createServer(toNodeHandler(app.fetch));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
      ana = await signIn('ana');
      bob = await signIn('bob');
    });

    afterAll(async () => {
      for (const context of contexts) await context.close().catch(() => {});
      await browser?.close();
      await app?.close();
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
      await pglite?.close();
      if (outDir) await rm(outDir, { recursive: true, force: true });
    });

    it('shows an issue created in one browser in the other', async () => {
      await ana.getByTestId('new-title').fill('Printer on fire');
      await ana.getByTestId('new-title').press('Enter');
      await issue(ana, 'Printer on fire').waitFor({ timeout: 1000 });
      await issue(bob, 'Printer on fire').waitFor({ timeout: 10_000 });
      await expect
        .poll(() => issue(bob, 'Printer on fire').locator('.meta').textContent(), {
          timeout: 10_000,
        })
        .toContain('by ana');
      await shoot(ana, '1-created-ana');
      await shoot(bob, '1-created-bob');
    });

    it('keeps an edit made offline and syncs it on reconnect', async () => {
      await ana.getByTestId('offline-toggle').check();
      const row = issue(ana, 'Printer on fire');
      await row.getByRole('button', { name: 'Edit' }).click();
      await ana.getByTestId('rename-input').fill('Printer on fire, again');
      await ana.getByTestId('rename-input').press('Enter');
      const renamed = issue(ana, 'Printer on fire, again');
      await renamed.getByTestId('issue-pending').waitFor({ timeout: 1000 });
      expect(await ana.getByTestId('status').textContent()).toContain('Offline');
      expect(await ana.getByTestId('pending-count').textContent()).toBe('1');
      await shoot(ana, '2-offline-edit-ana');

      // Bob still sees the old title while Ana is offline.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await issue(bob, 'Printer on fire').count()).toBe(1);

      await ana.getByTestId('offline-toggle').uncheck();
      await issue(bob, 'Printer on fire, again').waitFor({ timeout: 10_000 });
      await renamed.getByTestId('issue-pending').waitFor({ state: 'detached', timeout: 10_000 });
      await expect
        .poll(() => ana.getByTestId('status').textContent(), { timeout: 10_000 })
        .toContain('all changes saved');
      await shoot(ana, '2-reconnected-ana');
      await shoot(bob, '2-reconnected-bob');
    });

    it('stays offline across a reload while Work offline is ticked, then pushes when unticked', async () => {
      await ana.getByTestId('offline-toggle').check();
      await ana.getByTestId('new-title').fill('Made offline, then reloaded');
      await ana.getByTestId('new-title').press('Enter');
      await issue(ana, 'Made offline, then reloaded').waitFor({ timeout: 1000 });
      const synced: string[] = [];
      const record = (request: { url(): string }) => {
        const path = new URL(request.url()).pathname;
        if (/\/(pull|mutate|poke)$/.test(path)) synced.push(path);
      };
      ana.on('request', record);
      await ana.reload();
      // Read back from IndexedDB; the tick is remembered, so nothing goes out, not even a pull.
      await issue(ana, 'Made offline, then reloaded').waitFor();
      expect(await ana.getByTestId('offline-toggle').isChecked()).toBe(true);
      expect(await ana.getByTestId('status').textContent()).toContain('Offline');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await ana.getByTestId('pending-count').textContent()).toBe('1');
      ana.off('request', record);
      expect(synced).toEqual([]);
      expect(await issue(bob, 'Made offline, then reloaded').count()).toBe(0);
      const before = await pglite.query(
        `SELECT 1 FROM issue WHERE title = 'Made offline, then reloaded'`,
      );
      expect(before.rows).toHaveLength(0);

      await ana.getByTestId('offline-toggle').uncheck();
      await issue(bob, 'Made offline, then reloaded').waitFor();
      const rows = await pglite.query(
        `SELECT 1 FROM issue WHERE title = 'Made offline, then reloaded'`,
      );
      expect(rows.rows).toHaveLength(1);
      // Unticked is remembered too.
      await ana.reload();
      await issue(ana, 'Made offline, then reloaded').waitFor();
      expect(await ana.getByTestId('offline-toggle').isChecked()).toBe(false);
    });

    it("runs two tabs of one browser as two clients, and loses neither tab's changes", async () => {
      const tab = await ana.context().newPage();
      await tab.goto(base);
      await tab.getByTestId('user').filter({ hasText: 'ana' }).waitFor();
      // Offline, so that both tabs queue their mutation before either reaches the server.
      const pages = [
        [ana, 'From the first tab'],
        [tab, 'From the second tab'],
      ] as const;
      for (const [page, title] of pages) {
        await page.getByTestId('offline-toggle').check();
        await page.getByTestId('new-title').fill(title);
        await page.getByTestId('new-title').press('Enter');
        await issue(page, title).waitFor({ timeout: 1000 });
      }
      for (const [page] of pages) await page.getByTestId('offline-toggle').uncheck();
      await issue(ana, 'From the second tab').waitFor();
      await issue(tab, 'From the first tab').waitFor();
      await issue(bob, 'From the first tab').waitFor();
      await issue(bob, 'From the second tab').waitFor();
      const rows = await pglite.query<{ title: string }>(
        `SELECT title FROM issue WHERE title LIKE 'From the % tab' ORDER BY title`,
      );
      expect(rows.rows.map((r) => r.title)).toEqual(['From the first tab', 'From the second tab']);
      await shoot(tab, '4-second-tab-ana');
      await tab.close();
    });

    it('pushes what a closed tab left unsent from the tab still open', async () => {
      const tab = await ana.context().newPage();
      await tab.goto(base);
      await tab.getByTestId('user').filter({ hasText: 'ana' }).waitFor();
      await tab.getByTestId('offline-toggle').check();
      await tab.getByTestId('new-title').fill('Left in a closed tab');
      await tab.getByTestId('new-title').press('Enter');
      await issue(tab, 'Left in a closed tab').waitFor({ timeout: 1000 });
      await tab.close();
      // Ana's remaining tab adopts the closed tab's queue at its next pull; Bob's change
      // pokes it into pulling now rather than at the 30 s interval.
      await bob.getByTestId('new-title').fill('Anything to poke Ana');
      await bob.getByTestId('new-title').press('Enter');
      await issue(ana, 'Left in a closed tab').waitFor();
      await issue(bob, 'Left in a closed tab').waitFor();
      const rows = await pglite.query(`SELECT 1 FROM issue WHERE title = 'Left in a closed tab'`);
      expect(rows.rows).toHaveLength(1);
    });

    it('empties the comment box after posting, so a second submit posts nothing', async () => {
      const row = issue(ana, 'Printer on fire, again');
      await row.getByRole('button', { name: /^Comments/ }).click();
      const box = row.getByPlaceholder('Add a comment');
      await box.fill('Smoke seen at 9:00');
      await row.getByRole('button', { name: 'Comment', exact: true }).click();
      await row.getByTestId('comment').filter({ hasText: 'Smoke seen at 9:00' }).waitFor();
      await expect.poll(() => box.inputValue()).toBe('');
      // Submitting again (Enter in the box) must not post the comment a second time.
      await box.press('Enter');
      await expect
        .poll(() => ana.getByTestId('status').textContent(), { timeout: 10_000 })
        .toContain('all changes saved');
      const rows = await pglite.query(`SELECT 1 FROM comment WHERE body = 'Smoke seen at 9:00'`);
      expect(rows.rows).toHaveLength(1);
      expect(await row.getByTestId('comment').count()).toBe(1);
      await shoot(ana, '5-commented-ana');
    });

    it('marks, before any click, the actions only the owner may take', async () => {
      await issue(bob, 'Printer on fire, again').waitFor();
      const theirs = issue(bob, 'Printer on fire, again');
      for (const [name, verb] of [
        ['Edit', 'rename'],
        ['Close', 'close'],
        ['Delete', 'delete'],
      ] as const) {
        const button = theirs.getByRole('button', { name, exact: true });
        expect(await button.getAttribute('title')).toBe(
          `Only ana, who opened this issue, can ${verb} it`,
        );
        // Marked, not disabled: trying it shows the server's refusal (see the last test).
        expect(await button.isEnabled()).toBe(true);
      }
      expect(
        await theirs.getByRole('button', { name: /^Comments/ }).getAttribute('title'),
      ).toBeNull();
      const mine = issue(ana, 'Printer on fire, again');
      for (const name of ['Edit', 'Close', 'Delete']) {
        expect(
          await mine.getByRole('button', { name, exact: true }).getAttribute('title'),
        ).toBeNull();
      }
      await shoot(bob, '6-owner-only-bob');
    });

    it('asks before deleting, and deletes only once confirmed', async () => {
      await ana.getByTestId('new-title').fill('Delete me');
      await ana.getByTestId('new-title').press('Enter');
      const row = issue(ana, 'Delete me');
      await row.waitFor({ timeout: 1000 });
      await issue(bob, 'Delete me').waitFor();
      await row.getByRole('button', { name: 'Delete', exact: true }).click();
      // Asked, not deleted.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await row.count()).toBe(1);
      const confirm = row.getByTestId('confirm-delete');
      expect(await confirm.textContent()).toContain('Delete this issue?');
      await shoot(ana, '7-confirm-delete-ana');
      await confirm.getByRole('button', { name: 'Keep it' }).click();
      await confirm.waitFor({ state: 'detached', timeout: 1000 });
      expect(await row.count()).toBe(1);

      await row.getByRole('button', { name: 'Delete', exact: true }).click();
      await row.getByTestId('confirm-delete').getByRole('button', { name: 'Yes, delete' }).click();
      await row.waitFor({ state: 'detached', timeout: 1000 });
      await issue(bob, 'Delete me').waitFor({ state: 'detached' });
      const rows = await pglite.query(`SELECT 1 FROM issue WHERE title = 'Delete me'`);
      expect(rows.rows).toHaveLength(0);
    });

    it('shows a recurring error once, lets it be dismissed, and lets it expire', async () => {
      const errors = ana.getByTestId('error');
      // A blank title is refused by the mutator's validation, on the page, at once.
      await ana.getByTestId('new-title').fill('');
      await ana.getByTestId('new-title').press('Enter');
      await errors.first().waitFor({ timeout: 1000 });
      await ana.getByTestId('new-title').press('Enter');
      await ana.getByTestId('new-title').press('Enter');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await errors.count()).toBe(1);
      expect(await errors.textContent()).toContain('A title is required');
      await shoot(ana, '8-error-ana');

      await errors.getByRole('button', { name: 'dismiss' }).click();
      await errors.waitFor({ state: 'detached', timeout: 1000 });

      await ana.getByTestId('new-title').press('Enter');
      await errors.waitFor({ timeout: 1000 });
      const shownAt = Date.now();
      await errors.waitFor({ state: 'detached', timeout: 15_000 });
      expect(Date.now() - shownAt).toBeGreaterThan(2000);
    });

    it('keeps the status and the Work offline tick on one line while the server is unreachable', async () => {
      const page = await signIn('dee');
      const cut = (route: Route) => route.abort('connectionrefused');
      await page.route('**/mutate', cut);
      await page.route('**/pull', cut);
      await page.getByTestId('new-title').fill('Sent while the server is unreachable');
      await page.getByTestId('new-title').press('Enter');
      const status = page.getByTestId('status');
      await expect
        .poll(() => status.textContent(), { timeout: 10_000 })
        .toContain('Server unreachable');
      expect(await status.textContent()).toContain('1 change not yet confirmed');
      await shoot(page, '9-unreachable-dee');
      const statusBox = (await status.boundingBox())!;
      const toggle = page.locator('label', { has: page.getByTestId('offline-toggle') });
      const toggleBox = (await toggle.boundingBox())!;
      // The status text fits on one line (no taller than the one-line tick), and the tick
      // sits on that same line, after it.
      expect(statusBox.height).toBeLessThan(toggleBox.height * 1.5);
      const middle = (box: { y: number; height: number }) => box.y + box.height / 2;
      expect(Math.abs(middle(statusBox) - middle(toggleBox))).toBeLessThan(toggleBox.height / 2);
      expect(toggleBox.x).toBeGreaterThan(statusBox.x + statusBox.width);

      await page.unroute('**/mutate', cut);
      await page.unroute('**/pull', cut);
      await issue(ana, 'Sent while the server is unreachable').waitFor({ timeout: 20_000 });
      await page.context().close();
    });

    it('reverts a change the server refuses and shows why', async () => {
      // Bob closes Ana's issue while offline: the close applies at once on his page.
      await bob.getByTestId('offline-toggle').check();
      await issue(bob, 'Printer on fire, again').getByRole('button', { name: 'Close' }).click();
      await issue(bob, 'Printer on fire, again').waitFor({ state: 'detached', timeout: 1000 });
      await shoot(bob, '3-optimistic-close-bob');

      // Online again, the server refuses it; the rebase brings the issue back, open.
      await bob.getByTestId('offline-toggle').uncheck();
      const error = bob.getByTestId('error');
      await error.waitFor({ timeout: 10_000 });
      expect(await error.textContent()).toContain(
        'Closing the issue failed: Only ana, who opened this issue, can close it',
      );
      const back = issue(bob, 'Printer on fire, again');
      await back.waitFor({ timeout: 10_000 });
      expect(await back.getByTestId('issue-state').textContent()).toBe('open');
      expect(
        await issue(ana, 'Printer on fire, again').getByTestId('issue-state').textContent(),
      ).toBe('open');
      await shoot(bob, '3-refused-bob');
    });

    it("lets a non-owner try an owner-only action online, then shows the server's refusal", async () => {
      // The README's walkthrough, online: the page warns, lets Bob try, and the server says no.
      const theirs = issue(bob, 'Printer on fire, again');
      await theirs.getByRole('button', { name: 'Delete', exact: true }).click();
      const confirm = theirs.getByTestId('confirm-delete');
      expect(await confirm.textContent()).toContain('Only ana can: the server will refuse.');
      await confirm.getByRole('button', { name: 'Yes, delete' }).click();
      const error = bob.getByTestId('error').filter({ hasText: 'Deleting the issue failed' });
      await error.waitFor({ timeout: 10_000 });
      expect(await error.textContent()).toContain(
        'Deleting the issue failed: Only ana, who opened this issue, can delete it',
      );
      await issue(bob, 'Printer on fire, again').waitFor({ timeout: 10_000 });
      const rows = await pglite.query(`SELECT 1 FROM issue WHERE title = 'Printer on fire, again'`);
      expect(rows.rows).toHaveLength(1);
    });
  },
);
