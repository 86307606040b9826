/**
 * One wording for a value that fails a JSON Schema, wherever it is checked
 * (the agent against a release's schemas, the master's HTTP edge against the
 * API's): the field named from the root (`parameters.port`), then what is
 * wrong in a user's words, with the accepted keys or values when the schema
 * lists them. Ajv's own wording ("must NOT have additional properties") never
 * reaches users. Pure: takes Ajv's error object, reads no schema of its own.
 */

/** The part of an Ajv error this reads (Ajv's `ErrorObject`; `parentSchema` only with `verbose: true`). */
export interface SchemaErrorLike {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string | undefined;
  parentSchema?: unknown;
}

/**
 * @example
 * schemaErrorText(error, 'parameters')
 * // { field: 'parameters.port', message: 'parameters.port: unknown parameter (accepted: greeting, name)' }
 */
export function schemaErrorText(
  error: SchemaErrorLike,
  root: string,
  /** What an error about the whole value calls it. */
  whole = root || 'value',
): { field: string; message: string } {
  const path = error.instancePath.replace(/^\//, '').split('/').filter(Boolean).map(unescapePointer);
  const at = [root, ...path].filter(Boolean).join('.');
  const child = (name: string): string => [at, name].filter(Boolean).join('.');
  const noun = root === 'parameters' ? 'parameter' : 'field';
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(error.params.additionalProperty);
      const accepted = acceptedKeys(error.parentSchema);
      const list =
        accepted === undefined
          ? ''
          : accepted.length === 0
            ? ' (none accepted)'
            : ` (accepted: ${accepted.join(', ')})`;
      return { field: child(name), message: `${child(name)}: unknown ${noun}${list}` };
    }
    case 'required': {
      const name = String(error.params.missingProperty);
      return { field: child(name), message: `${child(name)}: required ${noun} missing` };
    }
    case 'enum': {
      const allowed = error.params.allowedValues;
      const list = Array.isArray(allowed) ? allowed.map((v) => JSON.stringify(v)).join(', ') : '';
      return { field: at, message: `${at || whole}: must be one of ${list}` };
    }
    case 'const':
      return { field: at, message: `${at || whole}: must be ${JSON.stringify(error.params.allowedValue)}` };
    default:
      return { field: at, message: `${at || whole}: ${error.message ?? 'is invalid'}` };
  }
}

function acceptedKeys(parentSchema: unknown): string[] | undefined {
  if (parentSchema === null || typeof parentSchema !== 'object') return undefined;
  const properties = (parentSchema as { properties?: unknown }).properties;
  if (properties === null || typeof properties !== 'object') return undefined;
  return Object.keys(properties).sort();
}

/** JSON Pointer escapes (RFC 6901) in Ajv's instancePath. */
function unescapePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}
