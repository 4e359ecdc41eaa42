// The Firecracker API contract, read from the Swagger 2.0 file the driver is written against.
// Plain JavaScript so that the double runs under bare `node` (no TypeScript loader on the test machines).
import fs from 'node:fs';
import { load } from 'js-yaml';

/**
 * Phases the spec states only in prose. "Pre-boot only" / "Post-boot only" in an operation's summary and
 * "fail after machine startup" in its description are read from the spec itself; the operations below are
 * not marked there, but Firecracker's runtime request handler does not accept them after InstanceStart
 * (or, for /vm, before it), so the double refuses them the same way.
 */
const EXTRA_PRE_BOOT = new Set([
  'PUT /serial',
  'PUT /logger',
  'PUT /metrics',
  'PUT /mmds/config',
  'PUT /entropy',
  'PUT /hotplug/memory',
]);
const EXTRA_POST_BOOT = new Set(['PATCH /vm']);

/** Firecracker's payload limit unless started with --http-api-max-payload-size. */
export const MAX_PAYLOAD_BYTES = 51200;

export class FirecrackerSpec {
  /** @param {string} file path of firecracker.yaml */
  constructor(file) {
    const doc = load(fs.readFileSync(file, 'utf8'));
    if (doc === null || typeof doc !== 'object' || doc.swagger !== '2.0') {
      throw new Error(`${file} is not a Swagger 2.0 document`);
    }
    this.version = String(doc.info?.version ?? 'unknown');
    this.definitions = doc.definitions ?? {};
    /** @type {{ template: string, regex: RegExp, params: string[], operations: Record<string, object> }[]} */
    this.routes = Object.entries(doc.paths ?? {}).map(([template, operations]) => {
      const params = [];
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, name) => {
        params.push(name);
        return '([^/]+)';
      });
      return { template, regex: new RegExp(`^${pattern}$`), params, operations };
    });
  }

  /**
   * Finds the operation for a request line.
   * @returns {{ template: string, operation: object, pathParams: Record<string,string> } | { error: string }}
   */
  route(method, urlPath) {
    for (const route of this.routes) {
      const match = route.regex.exec(urlPath);
      if (match === null) continue;
      const operation = route.operations[method.toLowerCase()];
      if (operation === undefined) break;
      const pathParams = {};
      route.params.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(match[i + 1]);
      });
      return { template: route.template, operation, pathParams };
    }
    return { error: `Invalid request method and/or path: ${method} ${urlPath}.` };
  }

  /** 'pre-boot' | 'post-boot' | 'any', from the spec's own words plus the table above. */
  phaseOf(method, template, operation) {
    const key = `${method} ${template}`;
    const summary = String(operation.summary ?? '');
    const description = String(operation.description ?? '');
    if (
      /Pre-boot only/i.exec(summary) !== null ||
      /fail after machine startup/i.exec(description) !== null ||
      EXTRA_PRE_BOOT.has(key)
    ) {
      return 'pre-boot';
    }
    if (/Post-boot only/i.exec(summary) !== null || EXTRA_POST_BOOT.has(key)) return 'post-boot';
    return 'any';
  }

  /** The body parameter of an operation, or null when it takes none. */
  bodyParameter(operation) {
    return (operation.parameters ?? []).find((p) => p.in === 'body') ?? null;
  }

  /**
   * Validates a value against a schema of the spec. Returns the first problem in serde's words, or null.
   * Properties a definition does not declare are refused unless it says `additionalProperties`: Firecracker
   * deserialises its request bodies with `deny_unknown_fields`, so a misspelt optional field fails there too.
   */
  validate(schema, value, where = 'body') {
    const resolved = this.resolve(schema);
    if (resolved.enum !== undefined && !resolved.enum.some((allowed) => allowed === value)) {
      return `unknown variant \`${String(value)}\` at ${where}, expected one of ${resolved.enum.map((v) => `\`${v}\``).join(', ')}`;
    }
    switch (resolved.type) {
      case 'object':
        return this.validateObject(resolved, value, where);
      case 'array': {
        if (!Array.isArray(value)) return `invalid type at ${where}: ${describe(value)}, expected a sequence`;
        for (let i = 0; i < value.length; i++) {
          const problem = this.validate(resolved.items ?? {}, value[i], `${where}[${i}]`);
          if (problem !== null) return problem;
        }
        return null;
      }
      case 'string':
        return typeof value === 'string' ? null : `invalid type at ${where}: ${describe(value)}, expected a string`;
      case 'boolean':
        return typeof value === 'boolean' ? null : `invalid type at ${where}: ${describe(value)}, expected a boolean`;
      case 'integer':
      case 'number': {
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          return `invalid type at ${where}: ${describe(value)}, expected ${resolved.type === 'integer' ? 'an integer' : 'a number'}`;
        }
        if (resolved.type === 'integer' && !Number.isInteger(value)) {
          return `invalid type at ${where}: floating point \`${value}\`, expected an integer`;
        }
        if (resolved.format === 'int32' && (value < -2147483648 || value > 2147483647)) {
          return `invalid value at ${where}: ${value} does not fit in 32 bits`;
        }
        if (resolved.minimum !== undefined && value < resolved.minimum) {
          return `invalid value at ${where}: ${value} is below the minimum ${resolved.minimum}`;
        }
        if (resolved.maximum !== undefined && value > resolved.maximum) {
          return `invalid value at ${where}: ${value} is above the maximum ${resolved.maximum}`;
        }
        return null;
      }
      case undefined:
        return null;
      default:
        throw new Error(`the double does not know the schema type ${resolved.type} (at ${where})`);
    }
  }

  validateObject(schema, value, where) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return `invalid type at ${where}: ${describe(value)}, expected a map`;
    }
    for (const name of schema.required ?? []) {
      if (!(name in value)) return `missing field \`${name}\` at ${where}`;
    }
    const properties = schema.properties ?? {};
    for (const [name, child] of Object.entries(value)) {
      const declared = properties[name];
      if (declared !== undefined) {
        if (this.resolve(declared).readOnly === true) return `field \`${name}\` at ${where} is read-only`;
        const problem = this.validate(declared, child, `${where}.${name}`);
        if (problem !== null) return problem;
        continue;
      }
      const extra = schema.additionalProperties;
      if (extra === true) continue;
      if (extra !== undefined && extra !== false) {
        const problem = this.validate(extra, child, `${where}.${name}`);
        if (problem !== null) return problem;
        continue;
      }
      const expected = Object.keys(properties).map((p) => `\`${p}\``);
      return `unknown field \`${name}\` at ${where}, expected one of ${expected.join(', ')}`;
    }
    return null;
  }

  /** Follows `$ref` (siblings of a $ref are documentation only in Swagger 2.0). */
  resolve(schema) {
    let current = schema;
    for (let depth = 0; current.$ref !== undefined; depth++) {
      if (depth > 32) throw new Error(`$ref loop at ${schema.$ref}`);
      const match = /^#\/definitions\/(.+)$/.exec(current.$ref);
      const target = match === null ? undefined : this.definitions[match[1]];
      if (target === undefined) throw new Error(`unresolvable $ref ${current.$ref}`);
      current = target;
    }
    return current;
  }

  /** The schema of a response with this status (or `default`). */
  responseSchema(operation, status) {
    const responses = operation.responses ?? {};
    return (responses[status] ?? responses[String(status)] ?? responses.default)?.schema ?? null;
  }
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'sequence';
  if (typeof value === 'object') return 'map';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  return `${typeof value} \`${String(value)}\``;
}
