import { SchemaVersionError } from './errors';

/**
 * The schema this tick was built for: the number of the newest migration in migrations/ (a test holds it
 * to them). Each migration records its number in tickrun_schema, and a breaking one raises the oldest tick
 * it lets run to itself (migrations/README.md).
 */
export const SCHEMA_VERSION = 10;

/**
 * Refuses, with one error saying what to do, a schema that lacks migrations this tick needs or that no
 * longer lets it run: the tick then claims and changes nothing, instead of failing statement by statement
 * or writing rows a newer schema reads otherwise. `version` null: the database predates tickrun_schema.
 */
export function checkSchemaVersion(version: number | null, oldestTick: number | null): void {
  if (version === null) {
    throw new SchemaVersionError(`the database's schema is older than version ${SCHEMA_VERSION} (it has no tickrun_schema table) and this tick needs version ${SCHEMA_VERSION}: run \`tickrun migrate\` before this function`);
  }
  if (oldestTick !== null && oldestTick > SCHEMA_VERSION) {
    throw new SchemaVersionError(`the database's schema (version ${version}) lets no tick older than version ${oldestTick} run, and this one is version ${SCHEMA_VERSION}: deploy the tick function of the release that migrated it`);
  }
  if (version < SCHEMA_VERSION) {
    throw new SchemaVersionError(`the database's schema is at version ${version} and this tick needs version ${SCHEMA_VERSION}: run \`tickrun migrate\` before this function`);
  }
}
