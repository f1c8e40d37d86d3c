import { readFileSync } from 'node:fs';
import path from 'node:path';

// Node keeps a script's whole source in memory as one string for the life of the process, at two bytes
// a character if a single one is not Latin-1. The bundles are built before the tests (`npm test`).
const DIST = path.resolve(__dirname, '../../dist');

describe.each(['cli.js', 'tick.js'])('dist/%s', (file) => {
  const source = readFileSync(path.join(DIST, file), 'utf8');

  it('is ASCII only', () => {
    const at = source.search(/[^\x00-\x7f]/);
    expect(at === -1 ? '' : source.slice(Math.max(0, at - 60), at + 20)).toBe('');
  });

  it('carries no comments (about 4 MB for the CLI, not 6 MB)', () => {
    expect(source.length).toBeLessThan(4.5e6);
  });
});
