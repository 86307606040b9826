/**
 * The Markdown API reference (`docs/api.md`), rendered from the route table
 * and the TypeBox schemas, so it cannot drift from what the master serves.
 * `npx tsx scripts/gen-api-docs.ts` writes it; `test/docs.test.ts` fails when
 * the file and this rendering disagree.
 *
 * The output is already in Prettier's Markdown shape (padded tables, one
 * blank line between blocks), so formatting the generated file changes
 * nothing.
 */
import { ROUTES, type RouteName, type RouteSpec } from './routes.js';
import { Bodies, ErrorBody, NotReady, type BodyName } from './schemas.js';
import { markdownCell as cell, markdownTable } from '../shared/error-docs.js';

/** The subset of JSON Schema that TypeBox emits for our bodies. */
interface JsonSchema {
  $id?: string;
  type?: string;
  const?: unknown;
  description?: string;
  default?: unknown;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  patternProperties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
}

interface FieldRow {
  name: string;
  type: string;
  required: boolean;
  notes: string;
}

/** TypeBox schemas are plain JSON Schema objects (plus symbol keys we ignore). */
function asJsonSchema(schema: unknown): JsonSchema {
  return schema as JsonSchema;
}

function isObjectWithFields(s: JsonSchema): boolean {
  return s.type === 'object' && s.properties !== undefined && Object.keys(s.properties).length > 0;
}

/** A TypeScript-like type expression for one schema. */
function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf !== undefined) return s.anyOf.map(typeOf).join(' | ');
  switch (s.type) {
    case 'array': {
      const item = s.items === undefined ? 'unknown' : typeOf(s.items);
      return item.includes(' | ') ? `(${item})[]` : `${item}[]`;
    }
    case 'object': {
      const values = s.patternProperties === undefined ? undefined : Object.values(s.patternProperties)[0];
      if (values !== undefined) return `Record<string, ${typeOf(values)}>`;
      return 'object';
    }
    case undefined:
      return 'unknown';
    default:
      return s.type;
  }
}

/** Validation keywords of one schema, in a fixed order. */
function constraintsOf(s: JsonSchema): string[] {
  const out: string[] = [];
  if (s.minLength !== undefined) out.push(`minLength ${s.minLength}`);
  if (s.maxLength !== undefined) out.push(`maxLength ${s.maxLength}`);
  if (s.minimum !== undefined) out.push(`minimum ${s.minimum}`);
  if (s.maximum !== undefined) out.push(`maximum ${s.maximum}`);
  if (s.minItems !== undefined) out.push(`minItems ${s.minItems}`);
  if (s.maxItems !== undefined) out.push(`maxItems ${s.maxItems}`);
  if (s.pattern !== undefined) out.push(`pattern \`${s.pattern}\``);
  if (s.format !== undefined) out.push(`format ${s.format}`);
  if (s.default !== undefined) out.push(`default \`${JSON.stringify(s.default)}\``);
  return out;
}

/** Description and constraints of a field, including those on union members and record values. */
function notesOf(s: JsonSchema): string {
  const parts: string[] = [];
  if (s.description !== undefined) parts.push(s.description);
  const own = constraintsOf(s);
  for (const member of s.anyOf ?? []) {
    const c = constraintsOf(member);
    if (c.length > 0) own.push(`${typeOf(member)}: ${c.join(', ')}`);
  }
  for (const values of Object.values(s.patternProperties ?? {})) {
    for (const member of values.anyOf ?? [values]) {
      const c = constraintsOf(member);
      if (c.length > 0) own.push(`values ${typeOf(member)}: ${c.join(', ')}`);
    }
  }
  if (own.length > 0) parts.push(own.join('; '));
  return parts.join('. ');
}

/** Rows for an object's fields; nested objects and arrays of objects get `a.b` / `a[].b` rows. */
function fieldRows(s: JsonSchema, prefix = ''): FieldRow[] {
  const rows: FieldRow[] = [];
  const required = new Set(s.required ?? []);
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    rows.push({ name: `${prefix}${name}`, type: typeOf(prop), required: required.has(name), notes: notesOf(prop) });
    // An object or null (`partition_usage`): the object's fields, as for a plain nested object.
    const nullable = prop.anyOf?.length === 2 ? prop.anyOf.find(isObjectWithFields) : undefined;
    if (isObjectWithFields(prop)) rows.push(...fieldRows(prop, `${prefix}${name}.`));
    else if (nullable !== undefined && prop.anyOf?.some((m) => m.type === 'null') === true)
      rows.push(...fieldRows(nullable, `${prefix}${name}.`));
    else if (prop.type === 'array' && prop.items !== undefined && isObjectWithFields(prop.items))
      rows.push(...fieldRows(prop.items, `${prefix}${name}[].`));
  }
  return rows;
}

function code(text: string): string {
  return `\`${text}\``;
}

function fieldsTable(s: JsonSchema): string {
  const rows = fieldRows(s).map((r) => [
    code(cell(r.name)),
    code(cell(r.type)),
    r.required ? 'yes' : 'no',
    cell(r.notes),
  ]);
  return markdownTable(['field', 'type', 'required', 'description / constraints'], rows);
}

/** One body: a table of its fields, a note for `{}`, or one table per alternative of a union. */
function renderSchema(s: JsonSchema): string {
  if (s.anyOf !== undefined) {
    const parts = ['One of:'];
    for (const [i, alt] of s.anyOf.entries()) {
      const label = alt.$id ?? `alternative ${i + 1}`;
      parts.push(`${i + 1}. **${label}**${alt.description === undefined ? '' : ` — ${alt.description}`}`);
      parts.push(renderSchema(alt));
    }
    return parts.join('\n\n');
  }
  if (!isObjectWithFields(s)) {
    if (s.type === 'object') return 'An empty JSON object: `{}`.';
    return `A JSON value of type ${code(cell(typeOf(s)))}.`;
  }
  const table = fieldsTable(s);
  return s.additionalProperties === true ? `${table}\n\nOther fields may appear.` : table;
}

function renderBody(kind: 'Request body' | 'Response', name: BodyName): string {
  return `${kind} (${code(name)}):\n\n${renderSchema(asJsonSchema(Bodies[name]))}`;
}

function tokens(route: RouteSpec): string {
  return route.auth.map(code).join(', ');
}

function renderRoute(name: RouteName, route: RouteSpec): string {
  return [
    `### ${code(route.path)}`,
    `${route.summary}.`,
    `Operation ${code(name)} · \`POST\` · tokens: ${tokens(route)}${route.audit ? ' · audited' : ''}.`,
    renderBody('Request body', route.body),
    renderBody('Response', route.response),
  ].join('\n\n');
}

function routeEntries(): [RouteName, RouteSpec][] {
  return Object.entries(ROUTES) as [RouteName, RouteSpec][];
}

function header(): string {
  const notReadyRoutes = routeEntries()
    .filter(([, r]) => r.response === 'requestResult')
    .map(([, r]) => code(r.path));
  return [
    '# HyperOpenX master API',
    '<!-- Generated by `npx tsx scripts/gen-api-docs.ts` from src/protocol/routes.ts and src/protocol/schemas.ts. Do not edit: test/docs.test.ts compares this file with the generator. -->',
    "The master speaks SlapOS's JSON API v0 (`slapos.*.v0.*`, following SlapOS's v0.0.3 reference) plus HyperOpenX's own endpoints (`hox.*.v1.*`). The same route table and schemas drive the server's validation, the typed client (`MasterClient.call(operation, body)`), the OpenAPI document and this page.",
    '## Conventions',
    [
      '- **POST + JSON.** Every endpoint below is `POST <path>` with a JSON object body (`content-type: application/json`), reads included. The path names the operation: `/<namespace>.<verb>.<version>.<object>`.',
      '- **Bearer token.** Every call carries `Authorization: Bearer <token>`. Each endpoint lists the token kinds it accepts (`admin`, `user`, `node`, `instance`, `registration`); another kind gets `HOX_FORBIDDEN`. Handlers then check the object itself: a node token acts on its own compute node only, and an instance the caller may not see answers as not found. A missing, unknown or expired token gets `HOX_UNAUTHENTICATED`; a registration token that was used or has expired gets `HOX_TOKEN_USED`.',
      '- **Closed schemas.** Request bodies are validated before the handler runs: an unknown field, a wrong type (no coercion) or a violated constraint gets `HOX_BAD_REQUEST` naming the field; defaults shown below are filled in. Answers are validated against their response schema before they are sent.',
      '- **Nested fields.** A row `a.b` is field `b` of object `a`; `a[].b` is field `b` of each item of array `a`. "required" is relative to the enclosing object; in a response it means "always present".',
      '- **Timestamps.** `processing_timestamp` is an integer in microseconds that strictly increases whenever the node must reprocess the instance. Dates (`created_at`, `expires_at`, `last_contact_at`) are ISO 8601 strings.',
      '- **Waiting for change.** `hox.get.v1.change` returns a `cursor`; sending it back as `since` waits (at most `timeout_ms`) for the next change concerning the caller, then answers `changed: true` with a new cursor. It says that something changed, not what: read the state again.',
      "- **Artifacts (binary).** Outside the table, `PUT /hox/v1/artifacts/<sha256>` (`content-type: application/octet-stream`; `admin`, `user`) stores an upload named by the SHA-256 of its bytes (the master checks it while streaming) and answers `{\"sha256\",\"size_bytes\"}`. The token, the content type, the declared `content-length` (at most the master's artifact limit, 256 MiB by default: `HOX_BODY_TOO_LARGE`) and the user's quota (1 GiB of artifacts by default: `HOX_ARTIFACT_QUOTA_EXCEEDED`; the admin has none) are checked before any of the body is read; an answer given before the body arrived closes the connection. Uploading bytes one already has is a no-op; another user uploading the same bytes gets them too (and pays for them). `GET` and `HEAD` on the same path return the bytes to the admin, to the users who uploaded them (a check restarts the grace period below), and to instances whose tree's owner, or the admin, uploaded them; a compute node's own token reads none (`HOX_FORBIDDEN`), anyone else gets `HOX_NOT_FOUND`. An artifact no instance of its owner names any more is deleted once its owner has not uploaded or checked it for the grace period (1 hour by default). `hox app deploy` uses them to hand an application's source to the compute nodes.",
      "- **Audit trail.** Every call to an endpoint marked *audited* (those that may change something or issue a credential), answered with success or an error (a refused token, a bad body, a conflict), and every `PUT` of an artifact, is appended to the master's audit log: when, the token kind and whose, the caller's address, the operation, the ids and names it acted on (never a value, a message or a token), the status and `ok` or the error code. `hox.allDocs.v1.audit_log` reads it ([security/audit.md](security/audit.md)).",
      '- **Unauthenticated.** Only `GET /health` (`{"status":"ok"}`) and `GET /openapi.json` (the OpenAPI 3.1 document built from the same table) need no token.',
    ].join('\n'),
    '## Errors',
    'Any answer other than 2xx has this body; the HTTP status is the one of the code. Codes, statuses and whether to retry: [errors.md](errors.md).',
    renderSchema(asJsonSchema(ErrorBody)),
    '## Not ready',
    `As in SlapOS, a request that was accepted but cannot be answered yet is not an error: the master answers HTTP 200 with this body (${notReadyRoutes.join(', ')}). Ask again later.`,
    renderSchema(asJsonSchema(NotReady)),
    '## Endpoints',
    markdownTable(
      ['path', 'operation', 'tokens', 'audited', 'summary'],
      routeEntries().map(([name, route]) => [
        code(route.path),
        code(name),
        tokens(route),
        route.audit ? 'yes' : 'no',
        cell(route.summary),
      ]),
    ),
  ].join('\n\n');
}

/** Renders `docs/api.md`. Pure: same route table and schemas, same text. */
export function renderApiDocs(): string {
  const slapos = routeEntries().filter(([, r]) => r.path.startsWith('/slapos.'));
  const hox = routeEntries().filter(([, r]) => !r.path.startsWith('/slapos.'));
  return `${[
    header(),
    '## SlapOS JSON API v0',
    ...slapos.map(([name, route]) => renderRoute(name, route)),
    '## HyperOpenX v1',
    ...hox.map(([name, route]) => renderRoute(name, route)),
  ].join('\n\n')}\n`;
}
