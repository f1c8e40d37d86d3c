import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { formatIndexes } from '../../shared/arrays';
import { logicalIndexes } from '../helpers/emulatedTasks';

// The README's helpers, run as a container runs them: each maps CLOUD_RUN_TASK_INDEX to the logical
// index through TICKRUN_TASK_INDEXES as tickrun writes it, and leaves a plain task's TICKRUN_TASK_INDEX be.
const README = fs.readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
const section = README.slice(README.indexOf('### Array tasks'));
const block = (lang: string) => {
  const open = section.indexOf('```' + lang + '\n');
  if (open === -1) throw new Error(`README "Array tasks" has no ${lang} block`);
  return section.slice(open + lang.length + 4, section.indexOf('\n```', open + 3));
};

const run = (lang: 'sh' | 'js' | 'python', env: Record<string, string>): string => {
  const [cmd, args] = {
    sh: ['sh', ['-c', `${block('sh')}\necho "$TICKRUN_TASK_INDEX"`]],
    js: [process.execPath, ['-e', `${block('js')}\nconsole.log(tickrunTaskIndex())`]],
    python: ['python3', ['-c', `${block('python')}\nprint(tickrun_task_index())`]],
  }[lang] as [string, string[]];
  const out = spawnSync(cmd, args, { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${lang} helper failed: ${out.stderr}`);
  return out.stdout.trim();
};

describe('TICKRUN_TASK_INDEXES', () => {
  it('is written compactly: ranges for runs of indexes, single indexes otherwise, and a container reads back the same', () => {
    expect(formatIndexes([...Array(10000).keys()])).toBe('0-9999');
    expect(formatIndexes([17, 4242, 9999])).toBe('17,4242,9999');
    expect(formatIndexes([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
    // Read back as a container reads it (the emulator's model of the README's helpers).
    const read = (text: string) => logicalIndexes({ TICKRUN_TASK_INDEXES: text });
    expect(read('0-2,5,7-8')).toEqual([0, 1, 2, 5, 7, 8]);
    expect(read(formatIndexes([3]))).toEqual([3]);
    expect(read(formatIndexes([17, 4242, 9999]))).toEqual([17, 4242, 9999]);
    expect(() => read('1,x')).toThrow(/"x" is neither an index nor a range/);
  });

  it.each(['sh', 'js', 'python'] as const)("the README's %s helper gives each container its logical index", (lang) => {
    expect(run(lang, { TICKRUN_TASK_INDEXES: '0-9999', CLOUD_RUN_TASK_INDEX: '4242' })).toBe('4242');
    expect(run(lang, { TICKRUN_TASK_INDEXES: '17,4242,9999', CLOUD_RUN_TASK_INDEX: '0' })).toBe('17');
    expect(run(lang, { TICKRUN_TASK_INDEXES: '17,4242,9999', CLOUD_RUN_TASK_INDEX: '2' })).toBe('9999');
    expect(run(lang, { TICKRUN_TASK_INDEXES: '0-2,5,7-8', CLOUD_RUN_TASK_INDEX: '4' })).toBe('7');
    // A plain task's execution: its own index is already set.
    expect(run(lang, { TICKRUN_TASK_INDEX: '3' })).toBe('3');
  });
});
