// The Logging client is loaded when a Cloud Run task's logs are read, from node_modules (the bundle keeps
// @google-cloud/logging external): bundled, its protos grew dist/cli.js from 4.0 to 5.3 MB, held in memory
// by every command, and the deploy build runs that bundle (migrate) where only tickrun logs would use it.
import type { LoggingServiceV2Client } from '@google-cloud/logging-api/build/src/v2/logging_service_v2_client';
import type { protos } from '@google-cloud/logging-api';
import { GoogleAuth, PassThroughClient } from 'google-auth-library';
import { emulatorClientOptions } from '../emulatorClient';

type ClientOptions = NonNullable<ConstructorParameters<typeof LoggingServiceV2Client>[0]>;
type LogEntry = protos.google.logging.v2.ILogEntry;

/** One page of entries and where the next starts (undefined: no more for now). */
export interface EntryPage {
  entries: LogEntry[];
  nextPageToken?: string;
}

/** What one page read asks: a filter over one project, oldest first. */
export interface PageRequest {
  project: string;
  filter: string;
  pageToken?: string;
  /** Newest first ("timestamp desc"), for the last lines of a log; oldest first otherwise. */
  newestFirst?: boolean;
  /** Default PAGE_SIZE. */
  pageSize?: number;
}

/** Reads one page of entries.list. */
export type ReadPage = (request: PageRequest) => Promise<EntryPage>;

/**
 * Entries per page: the most entries.list gives (pageSize: "If the value is negative or exceeds 1000, the
 * request is rejected", cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list), so a long log
 * costs as few reads of the per-minute quota as it can.
 */
export const PAGE_SIZE = 1000;

/**
 * entries.list through Google's client: REST over plain HTTP without credentials for an emulator (as the
 * Cloud Run clients do), gRPC with the ambient credentials otherwise. One page per call (autoPaginate off):
 * the caller decides when to read the next, so it can keep its reads within the quota.
 */
export function createPageReader(emulatorHost: string | undefined): ReadPage {
  let client: LoggingServiceV2Client | undefined;
  return async ({ project, filter, pageToken, newestFirst = false, pageSize = PAGE_SIZE }) => {
    if (!client) {
      if (!emulatorHost) await findCredentials();
      client = new (await loadClientClass())(clientOptions(emulatorHost));
    }
    const [entries, , response] = await client.listLogEntries(
      { resourceNames: [`projects/${project}`], filter, orderBy: newestFirst ? 'timestamp desc' : 'timestamp asc', pageSize, pageToken: pageToken ?? '' },
      { autoPaginate: false },
    );
    return { entries: entries ?? [], nextPageToken: response?.nextPageToken || undefined };
  };
}

/**
 * Looks for the ambient credentials before the client is made, and throws when there are none. The client
 * would look too, but once per method: each of its methods' stubs waits on that lookup, and those not
 * called reject unhandled, which ended the process (exit 1) after the link had been printed.
 */
async function findCredentials(): Promise<void> {
  await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/logging.read'] }).getClient();
}

/** The generated client class, through @google-cloud/logging (the package this project depends on). */
async function loadClientClass(): Promise<typeof LoggingServiceV2Client> {
  const { v2 } = await import('@google-cloud/logging');
  return v2.LoggingServiceV2Client;
}

function clientOptions(emulatorHost: string | undefined): ClientOptions {
  if (!emulatorHost) return {};
  // Without fetchImplementation gaxios imports node-fetch dynamically; the cast: see executors/cloudRunClients.ts.
  return emulatorClientOptions(emulatorHost, new PassThroughClient({ transporterOptions: { fetchImplementation: fetch } })) as ClientOptions;
}

/** An entry's text: the line a container wrote (textPayload), or a structured entry's message. */
export function entryText(entry: LogEntry): string {
  if (entry.textPayload != null) return entry.textPayload.replace(/\n$/, '');
  const fields = entry.jsonPayload?.fields;
  const message = fields?.message?.stringValue;
  if (message != null) return message;
  return fields ? JSON.stringify(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.stringValue ?? v.numberValue ?? v.boolValue ?? null]))) : '';
}
