import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';

// `vite build` writes the page to dist/, which the example server serves. `vite` (dev)
// proxies the API to a server started with `npm run serve` on port 3000. The Reprise
// packages are used from their sources (the `@reprise/source` export condition), so the
// example needs no build of them first. The React plugin compiles the page's JSX and gives
// `vite` (dev) Fast Refresh.
export default defineConfig({
  plugins: [react()],
  resolve: { conditions: ['@reprise/source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: Object.fromEntries(
      ['/mutate', '/pull', '/poke', '/login', '/logout', '/api'].map((path) => [
        path,
        'http://localhost:3000',
      ]),
    ),
  },
});
