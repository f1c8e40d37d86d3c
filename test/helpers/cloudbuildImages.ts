/**
 * What each container image the Cloud Build files use provides: the programs a step may call in it, and
 * the default entrypoint a step without `entrypoint:` runs. Kept by hand from each image's Dockerfile or
 * documentation (the `source` of each); a step that calls something missing here fails the pipeline on
 * a fresh project, so test/unit/cloudbuild.test.ts refuses it.
 */
export interface ImageContents {
  /** Programs on the image's PATH that steps call (shell builtins are bash's own). */
  provides: readonly string[];
  /** The image's ENTRYPOINT, run with the step's args when the step sets none; null: always set one. */
  entrypoint: string | null;
  /** Where the contents above come from. */
  source: string;
}

/** By repository (the image name before `:tag` and `@sha256:`). */
export const IMAGES: Readonly<Record<string, ImageContents>> = {
  // FROM buildpack-deps:bookworm (Debian 12 with bash, coreutils, tar, gzip, git, curl, passwd's
  // groupadd/useradd), then Node's release tarball (node, npm, npx) and yarn. No browser. Its ENTRYPOINT
  // is docker-entrypoint.sh, which guesses between node and a command: steps name theirs.
  node: {
    provides: ['node', 'npm', 'npx', 'yarn', 'bash', 'sh', 'tar', 'gzip', 'sha256sum', 'mkdir', 'cp', 'rm', 'ls', 'cat', 'find', 'git', 'curl', 'groupadd', 'useradd'],
    entrypoint: null,
    source: 'https://github.com/nodejs/docker-node/blob/main/22/bookworm/Dockerfile (FROM buildpack-deps:bookworm)',
  },
  // Alpine with git, openssh and ca-certificates, and the release binary at /bin/terraform, its ENTRYPOINT.
  'hashicorp/terraform': {
    provides: ['terraform', 'sh', 'git', 'ssh'],
    entrypoint: 'terraform',
    source: 'https://github.com/hashicorp/terraform/blob/main/build.Dockerfile',
  },
  // :VERSION-stable: gcloud with gsutil and bq on Google's Debian 12 base (bash, coreutils, tar, gzip).
  // Its ENTRYPOINT is a preprocessing script: steps name theirs.
  'gcr.io/google.com/cloudsdktool/google-cloud-cli': {
    provides: ['gcloud', 'gsutil', 'bq', 'bash', 'sh', 'tar', 'gzip', 'sha256sum', 'mkdir', 'cp', 'rm', 'ls', 'cat', 'find'],
    entrypoint: null,
    source: 'https://cloud.google.com/sdk/docs/downloads-docker; https://github.com/GoogleCloudPlatform/cloud-sdk-docker/blob/master/stable/Dockerfile',
  },
};

/** The repository part of an image reference: `node:22@sha256:…` is `node`. */
export function imageRepository(name: string): string {
  const noDigest = name.split('@')[0];
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.indexOf(':', lastSlash + 1);
  return colon === -1 ? noDigest : noDigest.slice(0, colon);
}

/** The contents of a step's image; throws naming the image when the table does not know it. */
export function imageContents(name: string): ImageContents {
  const found = IMAGES[imageRepository(name)];
  if (!found) throw new Error(`image ${name} is not in test/helpers/cloudbuildImages.ts: add what it provides, with its source`);
  return found;
}
