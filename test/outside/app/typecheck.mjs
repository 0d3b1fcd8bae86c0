// `tsc` over the app (NodeNext, strict, skipLibCheck false). drizzle-orm's own .d.ts files do
// not pass skipLibCheck false (they import mysql2 and other dialects' drivers and trip TS 5.9's
// checks: its docs ask for skipLibCheck), and every app with a drizzle schema loads them. So
// this fails on any error outside node_modules/drizzle-orm: in the app, in @reprise/*'s .d.ts,
// in zod's, node's or anyone else's, and an unused @ts-expect-error is one too.
import { spawnSync } from 'node:child_process';

const tsc = spawnSync('node_modules/.bin/tsc', ['-p', 'tsconfig.json', '--pretty', 'false'], {
  encoding: 'utf8',
});
const errors = tsc.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
const drizzle = errors.filter((line) => line.startsWith('node_modules/drizzle-orm/'));
const ours = errors.filter((line) => !line.startsWith('node_modules/drizzle-orm/'));
if (tsc.status !== 0 && errors.length === 0) {
  console.error(tsc.stdout, tsc.stderr);
  process.exit(1);
}
if (ours.length > 0) {
  console.error(ours.join('\n'));
  process.exit(1);
}
console.log(
  `tsc: 0 errors in the app and @reprise/* (${drizzle.length} inside drizzle-orm's own .d.ts)`,
);
