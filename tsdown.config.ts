import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type UserConfig } from 'tsdown';

/**
 * The build of the four published packages (`npm run build`). Each package's entry points
 * come from its own `exports` map: every subpath names its source under the
 * `@reprise/source` condition and its output under `default`, so adding or moving an entry
 * is one edit to that package.json and nothing here.
 */
const PACKAGES = ['shared', 'server', 'client', 'react'];

type Target = { '@reprise/source': string; default: string };

function entriesOf(dir: string): Record<string, string> {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    exports: Record<string, Target | string>;
  };
  const entries: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const out = /^\.\/dist\/(.+)\.js$/.exec(target.default)?.[1];
    if (out === undefined)
      throw new Error(`${dir}: exports["${subpath}"].default must be ./dist/*.js`);
    entries[out] = target['@reprise/source'];
  }
  return entries;
}

function packageConfig(name: string): UserConfig {
  const cwd = join(import.meta.dirname, 'packages', name);
  return {
    name: `@reprise/${name}`,
    cwd,
    entry: entriesOf(cwd),
    format: 'esm',
    platform: name === 'client' || name === 'react' ? 'neutral' : 'node',
    target: 'es2022',
    outDir: 'dist',
    clean: true,
    // `.js`, not `.mjs`: the packages are `"type": "module"`.
    fixedExtension: false,
    sourcemap: true,
    tsconfig: join(import.meta.dirname, 'tsconfig.build.json'),
    dts: { sourcemap: true },
    // postgres.js is not a declared peer of the server (see its package.json and the
    // README's Install); its adapter imports only its types, which stay imports.
    ...(name === 'server' ? { deps: { neverBundle: ['postgres'] } } : {}),
    logLevel: 'warn',
    // The .d.ts pass dominates the build time by nature; rolldown's hint about it is noise.
    inputOptions: { checks: { pluginTimings: false } },
  };
}

export default defineConfig(PACKAGES.map(packageConfig));
