import { DEFAULT_DASHBOARD_PORT, parseDashboardPort } from '../../shared/dashboard/port';
import { ConfigError } from '../../shared/errors';

describe("tickrun dev's dashboard port", () => {
  it.each([
    [undefined, {}, DEFAULT_DASHBOARD_PORT],
    [undefined, { TICKRUN_DASHBOARD_PORT: '9000' }, 9000],
    [undefined, { TICKRUN_DASHBOARD_PORT: '0' }, 0],
    ['9100', { TICKRUN_DASHBOARD_PORT: '9000' }, 9100],
    ['9100', { TICKRUN_DASHBOARD_PORT: 'http' }, 9100],
    ['65535', {}, 65535],
  ])('--port %s with %j is %i', (option, env, port) => {
    expect(parseDashboardPort(option, env)).toBe(port);
  });

  it.each([
    [undefined, { TICKRUN_DASHBOARD_PORT: 'http' }, 'TICKRUN_DASHBOARD_PORT="http" is not valid: it accepts a port from 0 (any free one) to 65535'],
    [undefined, { TICKRUN_DASHBOARD_PORT: '70000' }, 'TICKRUN_DASHBOARD_PORT="70000" is not valid: it accepts a port from 0 (any free one) to 65535'],
    ['-1', {}, '--port="-1" is not valid: it accepts a port from 0 (any free one) to 65535'],
    ['65536', { TICKRUN_DASHBOARD_PORT: '9000' }, '--port="65536" is not valid: it accepts a port from 0 (any free one) to 65535'],
    ['', {}, '--port="" is not valid: it accepts a port from 0 (any free one) to 65535'],
  ])('refuses --port %s with %j, naming where the value came from', (option, env, message) => {
    expect(() => parseDashboardPort(option, env)).toThrow(new ConfigError(message));
  });
});
