/**
 * The JSONPath subset Step Functions calls "Reference Paths": `$`, `$.a.b`,
 * `$.a[0]`, `$['a b']`, and `$$.` for the context object. Anything richer
 * (filters, wildcards, slices) is refused when the definition is loaded.
 */

export type PathSegment = string | number;

export interface CompiledPath {
  readonly source: string;
  /** `$$` paths read the context object. */
  readonly context: boolean;
  readonly segments: readonly PathSegment[];
}

export class PathError extends Error {
  override readonly name = 'PathError';
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

export function compilePath(source: string): CompiledPath {
  let rest: string;
  let context = false;
  if (source.startsWith('$$')) {
    context = true;
    rest = source.slice(2);
  } else if (source.startsWith('$')) {
    rest = source.slice(1);
  } else {
    throw new PathError(`"${source}" is not a JSONPath (it must start with $)`);
  }
  const segments: PathSegment[] = [];
  while (rest.length > 0) {
    if (rest.startsWith('.')) {
      const match = IDENT.exec(rest.slice(1));
      if (!match) throw new PathError(`"${source}": unsupported segment at "${rest}"`);
      segments.push(match[0]);
      rest = rest.slice(1 + match[0].length);
    } else if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0) throw new PathError(`"${source}": unclosed [`);
      const inner = rest.slice(1, close).trim();
      if (/^\d+$/.test(inner)) segments.push(Number(inner));
      else if (/^'[^']*'$/.test(inner) || /^"[^"]*"$/.test(inner)) segments.push(inner.slice(1, -1));
      else throw new PathError(`"${source}": filters, wildcards and slices ("[${inner}]") are not supported`);
      rest = rest.slice(close + 1);
    } else {
      throw new PathError(`"${source}": unsupported syntax at "${rest}"`);
    }
  }
  return { source, context, segments };
}

const cache = new Map<string, CompiledPath>();

function compiled(source: string): CompiledPath {
  let path = cache.get(source);
  if (!path) {
    path = compilePath(source);
    cache.set(source, path);
  }
  return path;
}

/** Thrown when a path names something the data does not have: Step Functions' States.Runtime. */
export class PathNotFound extends Error {
  override readonly name = 'States.Runtime';
}

export function readPath(source: string, input: unknown, context: unknown): unknown {
  const path = compiled(source);
  let value: unknown = path.context ? context : input;
  for (const segment of path.segments) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) {
      throw new PathNotFound(`The JSONPath '${source}' could not be found in the input`);
    }
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

/**
 * ResultPath semantics: `$` replaces the input, `null` keeps it unchanged,
 * `$.a.b` writes into a copy of the input, creating objects on the way.
 */
export function writeResultPath(resultPath: string | null | undefined, input: unknown, result: unknown): unknown {
  if (resultPath === null) return input;
  const source = resultPath ?? '$';
  const path = compiled(source);
  if (path.context) throw new PathError(`ResultPath "${source}" cannot target the context object`);
  if (path.segments.length === 0) return result;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new PathNotFound(`Unable to apply ResultPath "${source}": the state input is not an object`);
  }
  const root: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  let cursor: Record<string | number, unknown> = root;
  path.segments.forEach((segment, i) => {
    if (i === path.segments.length - 1) {
      cursor[segment] = result;
      return;
    }
    const next = cursor[segment];
    const copy: Record<string, unknown> = next !== null && typeof next === 'object' ? { ...(next as Record<string, unknown>) } : {};
    cursor[segment] = copy;
    cursor = copy;
  });
  return root;
}

/**
 * Payload templates (Parameters, ItemSelector, ResultSelector): keys ending
 * in `.$` take the value at their path; every other value is copied as is.
 */
export function applyTemplate(template: unknown, input: unknown, context: unknown): unknown {
  if (Array.isArray(template)) return template.map((entry) => applyTemplate(entry, input, context));
  if (template === null || typeof template !== 'object') return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template as Record<string, unknown>)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new PathError(`"${key}" must hold a path string`);
      if (value.startsWith('States.')) throw new PathError(`intrinsic functions ("${value}") are not supported by the local runner`);
      out[key.slice(0, -2)] = readPath(value, input, context);
    } else {
      out[key] = applyTemplate(value, input, context);
    }
  }
  return out;
}

/** Checks every path in a template at load time, so a bad one is refused before anything runs. */
export function checkTemplate(template: unknown, where: string): void {
  if (Array.isArray(template)) {
    template.forEach((entry, i) => { checkTemplate(entry, `${where}[${i}]`); });
    return;
  }
  if (template === null || typeof template !== 'object') return;
  for (const [key, value] of Object.entries(template as Record<string, unknown>)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new PathError(`${where}.${key} must hold a path string`);
      if (value.startsWith('States.')) throw new PathError(`${where}.${key}: intrinsic function "${value}" is not implemented by the local runner`);
      try {
        compilePath(value);
      } catch (error) {
        throw new PathError(`${where}.${key}: ${(error as Error).message}`);
      }
    } else {
      checkTemplate(value, `${where}.${key}`);
    }
  }
}
