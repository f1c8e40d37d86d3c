import { readOption, SETTINGS } from '../config';

/** Where `tickrun dev` serves the dashboard unless told otherwise. */
export const DEFAULT_DASHBOARD_PORT = SETTINGS.dashboardPort.default;

/**
 * The dashboard port of `tickrun dev`: the `--port` option, else TICKRUN_DASHBOARD_PORT, else the default.
 * 0 asks for a free port (the printed URL says which). ConfigError naming the source when it is not a port.
 */
export function parseDashboardPort(option: string | undefined, env: NodeJS.ProcessEnv): number {
  return readOption('dashboardPort', option, env);
}
