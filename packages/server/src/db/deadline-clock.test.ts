import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TICK_MS, type Timed, unwatch, watch } from './deadline-clock';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function timed(inMs: number): Timed & { fired: number } {
  return {
    at: performance.now() + inMs,
    fired: 0,
    expire() {
      this.fired++;
    },
  };
}

describe('the shared deadline clock', () => {
  it('expires a watched deadline once, soon after it passes', async () => {
    const wait = timed(20);
    watch(wait);
    await sleep(20 + 5 * TICK_MS);
    expect(wait.fired).toBe(1);
    await sleep(3 * TICK_MS);
    expect(wait.fired).toBe(1);
  });

  it('never expires one unwatched in time', async () => {
    const wait = timed(20);
    watch(wait);
    unwatch(wait);
    await sleep(20 + 5 * TICK_MS);
    expect(wait.fired).toBe(0);
  });

  it('follows a deadline moved later, and one set to Infinity while nothing is awaited', async () => {
    const moved = timed(10);
    const idle = timed(10);
    watch(moved);
    watch(idle);
    moved.at = performance.now() + 200;
    idle.at = Number.POSITIVE_INFINITY;
    await sleep(10 + 5 * TICK_MS);
    expect(moved.fired).toBe(0);
    expect(idle.fired).toBe(0);
    await sleep(200);
    expect(moved.fired).toBe(1);
    expect(idle.fired).toBe(0);
    unwatch(idle);
  });

  it('starts again after going idle', async () => {
    // Idle for more than the ten ticks after which the ticker stops.
    await sleep(15 * TICK_MS);
    const wait = timed(10);
    watch(wait);
    await sleep(10 + 5 * TICK_MS);
    expect(wait.fired).toBe(1);
  });
});

describe('the clock and the process', () => {
  // A child process that waits, bounded, on a promise that holds nothing: it must end in the
  // timeout's error, not exit with the wait unsettled; and once nothing is bounded, the
  // clock must not keep it alive.
  const run = (code: string) =>
    new Promise<{ code: number | null; stdout: string; ms: number }>((resolve) => {
      const started = Date.now();
      const child = spawn(
        process.execPath,
        ['--conditions=@reprise/source', '--import', 'tsx', '--input-type=module', '-e', code],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.once('exit', (exit) => resolve({ code: exit, stdout, ms: Date.now() - started }));
    });
  const IMPORT = `import { withDeadline } from './packages/server/src/db/database.ts';`;

  it('keeps the process alive while a deadline is watched', async () => {
    const { code, stdout } = await run(
      `${IMPORT}
       withDeadline(new Promise(() => {}), 300, 'a statement').catch((e) => console.log(e.sqlState));`,
    );
    expect(stdout.trim()).toBe('REPRISE_TIMEOUT');
    expect(code).toBe(0);
  }, 30_000);

  it('lets the process end once nothing is watched', async () => {
    const { code, stdout } = await run(
      `${IMPORT}
       await withDeadline(Promise.resolve('done'), 60_000, 'a statement').then(console.log);`,
    );
    expect(stdout.trim()).toBe('done');
    expect(code).toBe(0);
  }, 30_000);
});
