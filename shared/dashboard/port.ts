import { ConfigError } from '../errors';

/** Where `tickrun dev` serves the dashboard unless told otherwise. */
export const DEFAULT_DASHBOARD_PORT = 8787;

/**
 * The dashboard port of `tickrun dev`: the `--port` option, else TICKRUN_DASHBOARD_PORT, else 8787.
 * 0 asks for a free port (the printed URL says which). ConfigError naming the source when it is not a port.
 */
export function parseDashboardPort(option: string | undefined, env: NodeJS.ProcessEnv): number {
  const [source, raw] = option !== undefined ? ['--port', option] : ['TICKRUN_DASHBOARD_PORT', env.TICKRUN_DASHBOARD_PORT];
  if (raw === undefined || raw === '') return DEFAULT_DASHBOARD_PORT;
  const port = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new ConfigError(`${source}=${JSON.stringify(raw)} is not valid: it accepts a port from 0 (any free one) to 65535`);
  return port;
}
