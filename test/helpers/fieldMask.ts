/**
 * The `X-Goog-FieldMask` system parameter (also `$fields` or `fields` in the query), as Google APIs apply it
 * to a JSON answer: comma-separated paths of JSON field names, dotted into messages; a path through a
 * list applies to each element, and `*` keeps everything. The parenthesised form (`a(b,c)`) is refused
 * with the path named, as is an empty path, so a test never mistakes an unread mask for an applied one.
 */
type Tree = Map<string, Tree | true>;

export function parseFieldMask(mask: string): Tree | true {
  const tree: Tree = new Map();
  for (const raw of mask.split(',')) {
    const path = raw.trim();
    if (path === '*') return true;
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(path)) {
      throw new Error(`field mask "${mask}": path "${path}" is not a dotted path of field names`);
    }
    let node = tree;
    const names = path.split('.');
    for (const [i, name] of names.entries()) {
      const at = node.get(name);
      // A shorter path already keeps this whole field.
      if (at === true) break;
      if (i === names.length - 1) {
        node.set(name, true);
        break;
      }
      const next: Tree = at ?? new Map();
      node.set(name, next);
      node = next;
    }
  }
  return tree;
}

/** `value` with only the fields `mask` names (see parseFieldMask). */
export function applyFieldMask(value: unknown, mask: Tree | true): unknown {
  if (mask === true || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => applyFieldMask(item, mask));
  const out: Record<string, unknown> = {};
  for (const [name, sub] of mask) {
    const field = (value as Record<string, unknown>)[name];
    if (field !== undefined) out[name] = applyFieldMask(field, sub);
  }
  return out;
}
