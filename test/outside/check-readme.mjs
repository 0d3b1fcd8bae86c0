// The README's runnable code blocks are files of the outside apps (test/outside/app), which
// `npm run test:outside` type-checks and runs. A block preceded by the line
// `<!-- file: PATH -->` must equal that file (PATH from the repo root), word for word.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)```\n/g)];
const problems = [];
for (const [, path, code] of blocks) {
  let file;
  try {
    file = readFileSync(join(repo, path), 'utf8');
  } catch {
    problems.push(`README names ${path}, which does not exist`);
    continue;
  }
  if (file !== code) {
    const a = code.split('\n');
    const b = file.split('\n');
    const line = a.findIndex((text, i) => text !== b[i]);
    problems.push(
      `README's block for ${path} differs from the file at line ${line + 1}:\n` +
        `  README: ${a[line]}\n  file:   ${b[line]}`,
    );
  }
}
if (blocks.length === 0) problems.push('README has no <!-- file: ... --> blocks');
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`README: ${blocks.length} code blocks match their files`);
