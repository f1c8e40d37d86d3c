import fs from 'node:fs';
import path from 'node:path';

// What a checkout's source is not: installed, generated, or local state (and the repository's history,
// which a build's source need not have).
const NOT_SOURCE = new Set(['node_modules', '.git', '.tickrun', 'release', 'coverage', 'artifacts', '.terraform']);

/** Copies the checkout's source from `from` to `to`, leaving out what NOT_SOURCE names and `skip`. */
export function copyCheckout(from: string, to: string, skip: string[] = []): void {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (NOT_SOURCE.has(entry.name) || skip.includes(entry.name)) continue;
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      fs.mkdirSync(path.join(to, entry.name));
      copyCheckout(source, path.join(to, entry.name));
    } else if (entry.isFile()) fs.copyFileSync(source, path.join(to, entry.name));
  }
}
