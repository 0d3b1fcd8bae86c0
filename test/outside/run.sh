#!/usr/bin/env bash
# `npm run test:outside`: the packages as a new user gets them. Builds and packs the four
# packages, lints each tarball (publint, arethetypeswrong with the ESM-only profile), installs
# them into fresh apps in a temporary folder outside the repo (their other dependencies come
# from the npm registry) and runs those apps:
#   app/     plain `node app.mjs`; `tsc` on NodeNext, strict, skipLibCheck false; `vite build`
#            of a page on @reprise/client; `vitest run` on README step 5 and on the React
#            hooks of @reprise/react (react-dom in jsdom)
#   app-pg/  @reprise/server with only `pg` installed
# and checks that the README's code blocks are these apps' files, word for word.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
start=$SECONDS

node test/outside/check-readme.mjs

npm run build --silent

work="$(mktemp -d "${TMPDIR:-/tmp}/reprise-outside.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir "$work/packs"
for name in shared server client react; do
  tarball="$(cd "packages/$name" && npm pack --silent --pack-destination "$work/packs")"
  mv "$work/packs/$tarball" "$work/packs/reprise-$name.tgz"
  npx publint --strict "$work/packs/reprise-$name.tgz"
  npx attw --profile esm-only --format table-flipped "$work/packs/reprise-$name.tgz"
done

for app in app app-pg; do
  cp -R "test/outside/$app" "$work/$app"
  (cd "$work/$app" && npm install --no-audit --no-fund --loglevel=error)
done

echo "== app: node app.mjs, tsc, vite build, vitest run"
(cd "$work/app" && npm run --silent check)
echo "== app-pg"
(cd "$work/app-pg" && node app.mjs)
echo "test:outside passed in $((SECONDS - start)) s"
