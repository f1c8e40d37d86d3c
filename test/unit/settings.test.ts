import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../functions/cli';
import { readBudget } from '../../functions/tick';
import { accepts, parseConfig, PROFILES, readOption, readVariable, SETTINGS, type FlaggedSettingKey, type Setting, type SettingKey, type SettingKind } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { formatDuration } from '../../shared/workflows/duration';

// How a user writes a number in each kind of text; kept here, apart from the code under test.
const WRITE: Record<SettingKind, (n: number) => string> = { count: String, milliseconds: String, port: String, duration: formatDuration };
const GARBAGE = ['soon', '1.5', '0x10', '1e3', ' ', '12 apples'];

const keys = Object.keys(SETTINGS) as SettingKey[];
const flagged = keys.filter((key): key is FlaggedSettingKey => 'flag' in SETTINGS[key]);

/** What a source refuses `raw` with: its name, the text, and what it accepts, bounds included. */
const refusal = (source: string, raw: string, setting: Setting, kind: SettingKind) =>
  new ConfigError(`${source}=${JSON.stringify(raw)} is not valid: it accepts ${accepts(setting, kind)}`);

/** Some values within a setting's bounds: both ends, their neighbours and the middle. */
const inRange = ({ min, max }: Setting) => [...new Set([min, min + 1, Math.floor((min + max) / 2), max - 1, max])];

describe.each(keys)('the setting %s', (key) => {
  const setting: Setting = SETTINGS[key];
  const profile = PROFILES.default;

  it('says what it accepts from its kind and both its bounds', () => {
    const text = accepts(setting);
    expect(text).toContain(`from ${WRITE[setting.kind](setting.min)}`);
    expect(text).toMatch(new RegExp(` to ${WRITE[setting.kind](setting.max)}$`));
  });

  it('takes every value within its bounds from its variable, and refuses those just outside and garbage', () => {
    for (const n of inRange(setting)) expect(readVariable(key, { [setting.variable]: WRITE[setting.kind](n) }, profile)).toBe(n);
    for (const raw of [WRITE[setting.kind](setting.min - 1), WRITE[setting.kind](setting.max + 1), ...GARBAGE]) {
      expect(() => readVariable(key, { [setting.variable]: raw }, profile)).toThrow(refusal(setting.variable, raw, setting, setting.kind));
    }
  });

  it('has a default within its bounds, in every profile when it comes from the profile', () => {
    const defaults = setting.default === 'profile' ? Object.values(PROFILES).map((p) => (p as Record<string, number>)[key]) : [setting.default];
    for (const value of defaults) expect(value).toEqual(expect.any(Number));
    for (const value of defaults) expect(value >= setting.min && value <= setting.max).toBe(true);
  });
});

describe.each(flagged)('the flag of %s and its variable', (key) => {
  const setting = SETTINGS[key];
  const { flag, variable } = setting;

  it('give the same number for the same value within the bounds', () => {
    for (const n of inRange(setting)) {
      const byFlag = readOption(key, WRITE[flag.kind](n), {});
      const byVariable = readOption(key, undefined, { [variable]: WRITE[setting.kind](n) });
      expect([byFlag, byVariable]).toEqual([n, n]);
    }
  });

  it.each([
    ['just under the minimum', setting.min - 1],
    ['just over the maximum', setting.max + 1],
  ])('both refuse the value %s, each naming itself and what it accepts', (_, n) => {
    const [asFlag, asVariable] = [WRITE[flag.kind](n), WRITE[setting.kind](n)];
    expect(() => readOption(key, asFlag, {})).toThrow(refusal(flag.name, asFlag, setting, flag.kind));
    expect(() => readOption(key, undefined, { [variable]: asVariable })).toThrow(refusal(variable, asVariable, setting, setting.kind));
  });

  it.each(GARBAGE)('both refuse %j', (raw) => {
    expect(() => readOption(key, raw, {})).toThrow(refusal(flag.name, raw, setting, flag.kind));
    expect(() => readOption(key, undefined, { [variable]: raw })).toThrow(refusal(variable, raw, setting, setting.kind));
  });

  it('the flag, when given, wins over its variable', () => {
    const [low, high] = [setting.min, setting.max];
    expect(readOption(key, WRITE[flag.kind](low), { [variable]: WRITE[setting.kind](high) })).toBe(low);
  });
});

describe("the tick function's budgetMs", () => {
  const { min, max, variable } = SETTINGS.budgetMs;
  const byVariable = (n: number) => () => parseConfig({ [variable]: String(n) }).budgetMs;

  it('is bounded by the declaration of TICKRUN_BUDGET_MS: both take its minimum and maximum', () => {
    expect([readBudget({ budgetMs: min }), byVariable(min)()]).toEqual([min, min]);
    expect([readBudget({ budgetMs: max }), byVariable(max)()]).toEqual([max, max]);
  });

  it.each([min - 1, max + 1, 1.5])('both refuse %d, the body with 400 text naming budgetMs', (n) => {
    expect(readBudget({ budgetMs: n })).toEqual(new Error(`budgetMs must be ${accepts(SETTINGS.budgetMs)}`));
    expect(byVariable(n)).toThrow(ConfigError);
  });

  it('an empty body, or one without budgetMs, leaves the configured budget', () => {
    for (const body of [undefined, null, '', {}, { other: 1 }]) expect(readBudget(body)).toBeUndefined();
  });
});

describe('the CLI', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tickrun-settings-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  /** Runs `tickrun ARGS` in this process, as bin/tickrun.js does, with what it printed. */
  async function tickrun(args: string[], env: NodeJS.ProcessEnv = {}) {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += chunk), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += chunk), true));
    try {
      const code = await main(['node', 'tickrun', ...args], { TICKRUN_HOME: home, ...env });
      return { code, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('refuses `tick --budget 5h` with exit 2, as it refuses TICKRUN_BUDGET_MS=18000000', async () => {
    const byFlag = await tickrun(['tick', '--budget', '5h']);
    expect([byFlag.code, byFlag.stderr]).toEqual([2, 'tickrun: --budget="5h" is not valid: it accepts a duration from 0s to 1h\n']);
    const byVariable = await tickrun(['tick'], { TICKRUN_BUDGET_MS: '18000000' });
    expect([byVariable.code, byVariable.stderr]).toEqual([2, 'tickrun: TICKRUN_BUDGET_MS="18000000" is not valid: it accepts a whole number of milliseconds from 0 to 3600000\n']);
  });

  it('refuses `dev --port 65536` with exit 2 before starting anything', async () => {
    // The bad batch size makes a dev that got past its port fail at once, rather than start and run on.
    const r = await tickrun(['dev', '--port', '65536'], { TICKRUN_BATCH_SIZE: 'none' });
    expect([r.code, r.stderr]).toEqual([2, 'tickrun: --port="65536" is not valid: it accepts a port from 0 (any free one) to 65535\n']);
  });

  it('--help lists every setting: its variable, what it accepts, and its flag', async () => {
    const { code, stdout } = await tickrun(['--help']);
    expect(code).toBe(0);
    for (const key of keys) {
      const setting: Setting = SETTINGS[key];
      const line = stdout.split('\n').find((l) => l.trimStart().startsWith(`${setting.variable} `));
      expect([key, line]).toEqual([key, expect.stringContaining(accepts(setting))]);
      if (setting.flag) expect(line).toContain(setting.flag.name);
    }
  });

  it.each([
    ['tick', SETTINGS.budgetMs],
    ['dev', SETTINGS.dashboardPort],
  ])("`%s --help` describes its flag from the setting's declaration", async (command, setting: Setting) => {
    const { stdout } = await tickrun([command, '--help']);
    expect(stdout.replace(/\s+/g, ' ')).toContain(`${setting.flag!.name} <`);
    expect(stdout.replace(/\s+/g, ' ')).toContain(accepts(setting, setting.flag!.kind));
  });
});
