import { READS_PER_MINUTE, readPacer } from '../../shared/logs/executionLog';

describe('readPacer', () => {
  it('lets READS_PER_MINUTE reads start at once, then holds the next until the oldest is a minute old', async () => {
    let now = 1_000_000;
    const waits: number[] = [];
    const pace = readPacer(READS_PER_MINUTE, () => now, async (ms) => {
      waits.push(ms);
      now += ms;
    });
    for (let i = 0; i < READS_PER_MINUTE; i++) {
      await pace();
      now += 100;
    }
    expect(waits).toEqual([]);
    await pace();
    // The first read started at 1,000,000 and 30 reads later it is 1,003,000: 57 s to wait.
    expect(waits).toEqual([60_000 - READS_PER_MINUTE * 100]);
  });
});
