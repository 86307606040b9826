/** Checks values against a release's JSON Schemas (Ajv, non-strict, formats, first error only), compiled once per schema. */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { HoxError } from '../shared/errors.js';
import { schemaErrorText } from '../shared/schema-error-message.js';

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export class SchemaChecker {
  /**
   * Non-strict (release schemas may carry keywords Ajv does not know), with the standard formats (date-time, uri…);
   * verbose, so that an unknown parameter's error carries the schema that lists the accepted ones.
   */
  private readonly ajv = addFormats(new Ajv({ strict: false, allErrors: false, verbose: true }));
  private readonly validators = new WeakMap<object, ValidateFunction>();

  /** Throws `HOX_BAD_REQUEST` naming the first field at fault: `parameters.port: unknown parameter (accepted: greeting)`. */
  check(schema: Record<string, unknown>, value: unknown, what: string): void {
    let validate = this.validators.get(schema);
    if (validate === undefined) {
      validate = this.ajv.compile(schema);
      this.validators.set(schema, validate);
    }
    if (!validate(value)) {
      const e = validate.errors?.[0];
      if (e === undefined) throw new HoxError('HOX_BAD_REQUEST', `${what}: invalid`, { field: what });
      const { field, message } = schemaErrorText(e, what);
      throw new HoxError('HOX_BAD_REQUEST', message, { field });
    }
  }
}
