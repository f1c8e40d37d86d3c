/**
 * The options that point a Google client library at an emulator of its API's REST surface: REST
 * (`fallback`) over plain HTTP to host:port, authenticated by `authClient` (a PassThroughClient, which adds
 * no credentials). The Cloud Run and Cloud Logging clients both take these; each gives its own authClient.
 */
export function emulatorClientOptions(emulatorHost: string, authClient: unknown) {
  const url = new URL(`http://${emulatorHost}`);
  return { fallback: true, protocol: 'http', apiEndpoint: url.hostname, port: Number(url.port || 80), authClient } as const;
}
