import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';

// No terraform binary here: a module is parsed with HCL's own parser (compiled to wasm); expressions
// come out as "${…}" strings.

export type Block = Record<string, any>;

/** All .tf files of one folder parsed and merged by kind, the way Terraform reads a module. */
export interface Module {
  files: Record<string, Block>;
  resources: Record<string, Record<string, Block>>;
  data: Record<string, Record<string, Block>>;
  variables: Record<string, Block>;
  outputs: Record<string, Block>;
  locals: Block;
  terraform: Block[];
}

/** The module in `dir`; an empty module when the folder does not exist (so a test says what is missing). */
export async function loadModule(dir: string): Promise<Module> {
  const mod: Module = { files: {}, resources: {}, data: {}, variables: {}, outputs: {}, locals: {}, terraform: [] };
  if (!existsSync(dir)) return mod;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.tf'))) {
    const json = await parse(file, readFileSync(path.join(dir, file), 'utf8'));
    mod.files[file] = json;
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries<Record<string, Block[]>>(json[kind] ?? {})) {
        const into = kind === 'resource' ? mod.resources : mod.data;
        into[type] ??= {};
        for (const [name, [block]] of Object.entries(byName)) into[type][name] = block;
      }
    }
    for (const [name, [block]] of Object.entries<Block[]>(json.variable ?? {})) mod.variables[name] = block;
    for (const [name, [block]] of Object.entries<Block[]>(json.output ?? {})) mod.outputs[name] = block;
    for (const locals of json.locals ?? []) Object.assign(mod.locals, locals);
    mod.terraform.push(...(json.terraform ?? []));
  }
  return mod;
}

/** Every string anywhere in a parsed value. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** A resource of a module, or an error naming what the module lacks. */
export function resourceOf(mod: Module, where: string, type: string, name: string): Block {
  const block = mod.resources[type]?.[name];
  if (!block) throw new Error(`${where} declares no ${type}.${name}`);
  return block;
}

/** The roles a local list such as `["roles/a", "roles/b"]` names, as parsed ("${[…]}" or a list). */
export function roleList(value: unknown): string[] {
  return strings(value).flatMap((s) => [...s.matchAll(/roles\/[A-Za-z0-9_.]+/g)].map((m) => m[0]));
}
