import { loadModule, parse } from 'libpg-query';

/** A migration's text, named by its file. */
export interface Migration {
  name: string;
  sql: string;
}

/**
 * What the schema held before a migration, as far as the rule needs it: the tables (with their columns),
 * the unique indexes (an ON CONFLICT of the previous tick may infer one), the functions and views.
 */
interface Schema {
  tables: Map<string, Set<string>>;
  uniqueIndexes: Set<string>;
  routines: Set<string>;
}

/** What one migration adds, which the statements after it in the same migration may then change freely. */
interface Added {
  tables: Set<string>;
  /** "table.column" */
  columns: Set<string>;
}

/** A statement the previous tick could notice: it names the migration, the statement and why. */
export interface Contraction {
  migration: string;
  statement: string;
  why: string;
}

/** A statement of a kind the rule has not decided on: the rule must learn it before a migration may use it. */
export class UnknownStatementError extends Error {}

/**
 * Reads every migration in order with PostgreSQL's own parser and returns, for each, the statements that are
 * not expand-only (migrations/README.md): those that could fail a write or a read of the tick of the release
 * before it, or of a rollback to it. A statement of a kind not known here throws UnknownStatementError.
 */
export async function findContractions(migrations: Migration[]): Promise<Map<string, Contraction[]>> {
  await loadModule();
  const schema: Schema = { tables: new Map(), uniqueIndexes: new Set(), routines: new Set() };
  const found = new Map<string, Contraction[]>();
  for (const m of migrations) {
    const added: Added = { tables: new Set(), columns: new Set() };
    const list: Contraction[] = [];
    const { stmts } = await parse(m.sql);
    for (const { stmt, stmt_location = 0, stmt_len } of stmts) {
      const text = m.sql.slice(stmt_location, stmt_len ? stmt_location + stmt_len : undefined).replace(/--[^\n]*/g, '').replace(/\s+/g, ' ').trim();
      const [kind, node] = Object.entries(stmt)[0] as [string, any];
      const judge = JUDGES[kind];
      if (!judge) throw new UnknownStatementError(`${m.name}: ${kind} is a statement the migration rule does not know (test/compat/contractions.ts): decide whether it is expand-only there. Statement: ${text}`);
      for (const why of judge(node, schema, added)) list.push({ migration: m.name, statement: text, why });
    }
    found.set(m.name, list);
  }
  return found;
}

type Judge = (node: any, schema: Schema, added: Added) => string[];

const sval = (n: any): string => n?.String?.sval ?? '';
const qualified = (names: any[] = []): string => names.map(sval).join('.');
/** Whether the table existed before this migration (a table it creates may be shaped freely). */
const existing = (table: string, schema: Schema, added: Added) => !added.tables.has(table) && schema.tables.has(table);
/** Every column named is one this migration added: the previous tick never writes it. */
const allNew = (table: string, cols: string[], added: Added) => cols.length > 0 && cols.every((c) => added.columns.has(`${table}.${c}`));

/** A unique key the previous tick's writes cannot collide on: they leave one of its columns null, and nulls are distinct. */
const spared = (table: string, cols: string[], added: Added, nullsNotDistinct?: boolean) => !nullsNotDistinct && cols.some((c) => added.columns.has(`${table}.${c}`));

/** Whether a CHECK expression could refuse a row whose new columns are null: it tests for null itself. */
const testsNull = (expr: unknown): boolean => JSON.stringify(expr).match(/"(NullTest|CoalesceExpr|BooleanTest)"/) !== null;

/** Column names a CHECK expression reads. */
function columnsOf(expr: unknown, into: string[] = []): string[] {
  if (Array.isArray(expr)) for (const e of expr) columnsOf(e, into);
  else if (expr && typeof expr === 'object') {
    for (const [k, v] of Object.entries(expr)) {
      if (k === 'ColumnRef') into.push(sval((v as any).fields.at(-1)));
      else columnsOf(v, into);
    }
  }
  return into;
}

const JUDGES: Record<string, Judge> = {
  CreateStmt(node, schema, added) {
    const table = node.relation.relname;
    added.tables.add(table);
    schema.tables.set(table, new Set(node.tableElts?.filter((e: any) => e.ColumnDef).map((e: any) => e.ColumnDef.colname)));
    return [];
  },
  IndexStmt(node, schema, added) {
    const table = node.relation.relname;
    const cols = node.indexParams.map((p: any) => p.IndexElem.name);
    if (node.unique) schema.uniqueIndexes.add(node.idxname);
    // A unique index refuses the previous tick's writes that collide, unless they leave one of its columns
    // null (one this migration added), and nulls are distinct.
    return node.unique && existing(table, schema, added) && !spared(table, cols, added, node.nulls_not_distinct) ? [`adds a UNIQUE index on ${table} (${cols.join(', ')}), which the previous tick's writes may collide on`] : [];
  },
  AlterTableStmt(node, schema, added) {
    const table = node.relation.relname;
    if (!existing(table, schema, added)) return node.cmds.map((c: any) => alterNew(c.AlterTableCmd, table, schema, added)).flat();
    return node.cmds.map((c: any) => alterExisting(c.AlterTableCmd, table, schema, added)).flat();
  },
  RenameStmt: (node) => [`renames ${node.relation?.relname ?? qualified(node.object?.List?.items)}${node.subname ? `.${node.subname}` : ''} to ${node.newname}, a name the previous tick uses`],
  DropStmt(node, schema, added) {
    const names = node.objects.map((o: any) => (o.List ? qualified(o.List.items) : o.ObjectWithArgs ? qualified(o.ObjectWithArgs.objname) : sval(o)));
    if (node.removeType === 'OBJECT_INDEX') {
      // A plain index changes plans, never results; a unique one may be what an ON CONFLICT infers.
      const unique = names.filter((n: string) => schema.uniqueIndexes.has(n));
      for (const n of names) schema.uniqueIndexes.delete(n);
      return unique.length ? [`drops the unique index ${unique.join(', ')}, which an ON CONFLICT may infer`] : [];
    }
    const mine = names.every((n: string) => added.tables.has(n));
    return mine ? [] : [`drops ${node.removeType.replace('OBJECT_', '').toLowerCase()} ${names.join(', ')}`];
  },
  DeleteStmt: (node, schema, added) => (existing(node.relation.relname, schema, added) ? [`deletes rows of ${node.relation.relname} the previous tick may read`] : []),
  TruncateStmt: (node, schema, added) => node.relations.filter((r: any) => existing(r.RangeVar.relname, schema, added)).map((r: any) => `empties ${r.RangeVar.relname}`),
  UpdateStmt(node, schema, added) {
    const table = node.relation.relname;
    const cols = node.targetList.map((t: any) => t.ResTarget.name);
    // A backfill of columns this migration added, and the schema's own version row, change nothing the previous tick reads.
    if (table === 'tickrun_schema' || !existing(table, schema, added) || allNew(table, cols, added)) return [];
    return [`rewrites ${table} (${cols.join(', ')}) in rows the previous tick reads`];
  },
  InsertStmt: (node, schema, added) => (existing(node.relation.relname, schema, added) ? [`adds rows to ${node.relation.relname}, which the previous tick reads`] : []),
  CreateFunctionStmt(node, schema) {
    const name = qualified(node.funcname);
    const replaced = node.replace && schema.routines.has(name);
    schema.routines.add(name);
    return replaced ? [`redefines the function ${name}, which the previous tick may call`] : [];
  },
  ViewStmt(node, schema) {
    const name = node.view.relname;
    const replaced = node.replace && schema.routines.has(name);
    schema.routines.add(name);
    return replaced ? [`redefines the view ${name}, which the previous tick may read`] : [];
  },
  AlterEnumStmt: (node) => (node.oldVal ? [`renames the value ${node.oldVal} of ${qualified(node.typeName)}`] : []),
  CreateEnumStmt: () => [],
  CreateSeqStmt: () => [],
  CommentStmt: () => [],
};

/** Any change to a table this migration created: nothing of the previous release uses it. */
function alterNew(cmd: any, table: string, schema: Schema, added: Added): string[] {
  if (cmd.subtype === 'AT_AddColumn') schema.tables.get(table)?.add(cmd.def.ColumnDef.colname);
  return [];
}

/** One subcommand of an ALTER TABLE on a table that was there before the migration. */
function alterExisting(cmd: any, table: string, schema: Schema, added: Added): string[] {
  switch (cmd.subtype) {
    case 'AT_AddColumn': {
      const col = cmd.def.ColumnDef;
      const types = (col.constraints ?? []).map((c: any) => c.Constraint.contype);
      schema.tables.get(table)?.add(col.colname);
      added.columns.add(`${table}.${col.colname}`);
      const required = types.includes('CONSTR_NOTNULL') || types.includes('CONSTR_PRIMARY');
      const filled = types.some((t: string) => ['CONSTR_DEFAULT', 'CONSTR_IDENTITY', 'CONSTR_GENERATED'].includes(t));
      return required && !filled ? [`adds ${table}.${col.colname} NOT NULL without a default: the previous tick's inserts leave it null`] : [];
    }
    case 'AT_DropColumn':
      return [`drops ${table}.${cmd.name}`];
    case 'AT_AlterColumnType':
      return [`changes the type of ${table}.${cmd.name}`];
    case 'AT_SetNotNull':
      return [`sets ${table}.${cmd.name} NOT NULL: the previous tick's writes may leave it null`];
    case 'AT_DropNotNull':
      return [];
    case 'AT_ColumnDefault':
      return cmd.def ? [] : [`drops the default of ${table}.${cmd.name}, which the previous tick's inserts may rely on`];
    case 'AT_AddConstraint': {
      const c = cmd.def.Constraint;
      const check = c.contype === 'CONSTR_CHECK';
      const cols: string[] = check ? columnsOf(c.raw_expr) : (c.contype === 'CONSTR_FOREIGN' ? c.fk_attrs : c.keys ?? []).map(sval);
      // Over columns the previous tick leaves null, a CHECK or a foreign key passes and a unique key never
      // collides. NOT VALID spares the rows already there, not that tick's next writes ("still enforced
      // against subsequent inserts or updates", postgresql.org/docs/17/sql-altertable.html): no exception for it.
      const safe = check ? allNew(table, cols, added) && !testsNull(c.raw_expr) : c.contype !== 'CONSTR_PRIMARY' && spared(table, cols, added, c.nulls_not_distinct);
      return safe ? [] : [`adds the constraint ${c.conname ?? c.contype} on ${table} (${cols.join(', ')}), which the previous tick's writes may violate`];
    }
    case 'AT_DropConstraint':
      return [`drops the constraint ${table}.${cmd.name}, which the previous tick may rely on (an ON CONFLICT, a cascade, values it expects)`];
    case 'AT_ValidateConstraint':
      return [];
    default:
      throw new UnknownStatementError(`ALTER TABLE ${table} ${cmd.subtype} is a change the migration rule does not know (test/compat/contractions.ts): decide whether it is expand-only there`);
  }
}
