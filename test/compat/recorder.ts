import { Client } from 'pg';
import { encode, type RecordedStatement, type StatementFixture } from './fixture';

type Callback = (err: Error | null, res: any) => void;

/**
 * Records every statement sent to one database through `pg`, by any pool or client (the tick's steps,
 * operator commands and dashboard reads all go through Client#query), until `stop()`. Statements are kept
 * in the order their answers came: that is the order their effects were seen in.
 */
export function recordStatements(database: string, migration: string): { stop(): StatementFixture } {
  const proto = Client.prototype as unknown as { query: (this: Client, ...args: any[]) => any };
  const original = proto.query;
  const conns = new WeakMap<object, number>();
  const texts = new Map<string, number>();
  const statements: RecordedStatement[] = [];
  let connsSeen = 0;
  let t0: number | undefined;
  let startedAt = Date.now();
  proto.query = function query(this: Client & { database?: string }, config: any, values?: any, callback?: any): any {
    if (this.database !== database || typeof config?.submit === 'function') return original.call(this, config, values, callback);
    const text: string = typeof config === 'string' ? config : config.text;
    const vals: unknown[] = (Array.isArray(values) ? values : config?.values) ?? [];
    if (!conns.has(this)) conns.set(this, connsSeen++);
    const sent = performance.now();
    if (t0 === undefined) {
      t0 = sent;
      startedAt = Date.now();
    }
    const entry = { conn: conns.get(this)!, at: Math.round(sent - t0), text: textIndex(text), values: encode(vals) as unknown[] };
    const keep = (err: any, res: any) => {
      if (err) statements.push({ ...entry, rowCount: null, error: err.code ?? err.message });
      else {
        const results: any[] = Array.isArray(res) ? res : [res];
        const rows = results.flatMap((r) => r.rows ?? []);
        statements.push({ ...entry, rowCount: results.reduce((n, r) => (r.rowCount === null ? n : (n ?? 0) + r.rowCount), null), ...(rows.length > 0 || results.some((r) => r.fields?.length) ? { rows: encode(rows) as unknown[] } : {}) });
      }
    };
    const cb: Callback | undefined = typeof values === 'function' ? values : callback;
    if (cb) {
      const wrapped: Callback = (err, res) => {
        keep(err, res);
        cb(err, res);
      };
      return typeof values === 'function' ? original.call(this, config, wrapped) : original.call(this, config, values, wrapped);
    }
    return (original.call(this, config, values) as Promise<any>).then(
      (res) => (keep(null, res), res),
      (err) => {
        keep(err, null);
        throw err;
      },
    );
  };
  function textIndex(text: string): number {
    if (!texts.has(text)) texts.set(text, texts.size);
    return texts.get(text)!;
  }
  return {
    stop() {
      proto.query = original;
      return { migration, startedAt, texts: [...texts.keys()], statements };
    },
  };
}
