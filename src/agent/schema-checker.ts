/** Checks values against a release's JSON Schemas (Ajv, non-strict, formats, first error only), compiled once per schema. */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { HoxError } from '../shared/errors.js';

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export class SchemaChecker {
  /** Non-strict (release schemas may carry keywords Ajv does not know), with the standard formats (date-time, uri…). */
  private readonly ajv = addFormats(new Ajv({ strict: false, allErrors: false }));
  private readonly validators = new WeakMap<object, ValidateFunction>();

  /** Throws `HOX_BAD_REQUEST` naming the first field at fault: `parameters.greeting: must be string`. */
  check(schema: Record<string, unknown>, value: unknown, what: string): void {
    let validate = this.validators.get(schema);
    if (validate === undefined) {
      validate = this.ajv.compile(schema);
      this.validators.set(schema, validate);
    }
    if (!validate(value)) {
      const e = validate.errors?.[0];
      const field =
        e === undefined
          ? ''
          : [
              e.instancePath.replace(/^\//, '').replaceAll('/', '.'),
              e.keyword === 'additionalProperties'
                ? String((e.params as { additionalProperty?: unknown }).additionalProperty)
                : '',
            ]
              .filter(Boolean)
              .join('.');
      throw new HoxError('HOX_BAD_REQUEST', `${what}${field ? `.${field}` : ''}: ${e?.message ?? 'invalid'}`, {
        field,
      });
    }
  }
}
