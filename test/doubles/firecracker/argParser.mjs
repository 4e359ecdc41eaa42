// The command-line parser Firecracker and its jailer share, as src/utils/src/arg_parser.rs (firecracker-microvm/
// firecracker) implements it, so that the doubles accept and refuse exactly what the real binaries do:
//   - every argument is `--name`, its value the next word (no `--name=value`, no short flags but `-h`);
//   - a value may not start with `--` (MissingValue), an unknown name is UnexpectedArgument, a repeated one
//     DuplicateArgument unless it allows several;
//   - `--help`/`-h` or `--version` anywhere before `--` short-circuits the parse;
//   - everything after the first `--` is passed on untouched (extra_args);
//   - required arguments and `forbids` are checked after the parse, in the arguments' name order.
// Error texts are the parser's displaydoc strings.

export class ArgParseError extends Error {}

/**
 * @param {string[]} argv the arguments after the program name
 * @param {Record<string, { takesValue?: boolean, required?: boolean, multiple?: boolean, default?: string,
 *   forbids?: string[] }>} spec
 * @returns {{ values: Map<string, string | string[] | true>, extra: string[], help: boolean, version: boolean }}
 */
export function parseArgs(argv, spec) {
  const separator = argv.indexOf('--');
  const args = separator === -1 ? argv : argv.slice(0, separator);
  const extra = separator === -1 ? [] : argv.slice(separator + 1);
  const values = new Map();
  if (args.includes('--help') || args.includes('-h')) return { values, extra, help: true, version: false };
  if (args.includes('--version')) return { values, extra, help: false, version: true };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--'))
      throw new ArgParseError(`Found argument '${arg}' which wasn't expected, or isn't valid in this context.`);
    const name = arg.slice(2);
    const argument = spec[name];
    if (argument === undefined) {
      throw new ArgParseError(`Found argument '${name}' which wasn't expected, or isn't valid in this context.`);
    }
    if (!argument.multiple && values.has(name)) {
      throw new ArgParseError(`The argument '${name}' was provided more than once.`);
    }
    if (argument.takesValue) {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) {
        throw new ArgParseError(`The argument '${name}' requires a value, but none was supplied.`);
      }
      i++;
      if (argument.multiple) values.set(name, [...(values.get(name) ?? []), value]);
      else values.set(name, value);
    } else {
      values.set(name, true);
    }
  }
  // The real parser keeps its arguments in a BTreeMap: requirements are checked in name order.
  for (const name of Object.keys(spec).sort()) {
    const argument = spec[name];
    if (argument.required && !values.has(name)) throw new ArgParseError(`Argument '${name}' required, but not found.`);
    if (values.has(name)) {
      for (const other of argument.forbids ?? []) {
        if (args.includes(`--${other}`)) {
          throw new ArgParseError(`Argument '${other}' cannot be used together with argument '${name}'.`);
        }
      }
    }
  }
  for (const [name, argument] of Object.entries(spec)) {
    if (!values.has(name) && argument.default !== undefined) values.set(name, argument.default);
  }
  return { values, extra, help: false, version: false };
}

/** Firecracker's and the jailer's `--id` check (src/utils/src/validators.rs): 1–64 alphanumerics and hyphens. */
export function instanceIdProblem(id) {
  if (id.length < 1 || id.length > 64) return `Invalid len (${id.length});  the length must be between 1 and 64`;
  for (let i = 0; i < id.length; i++) {
    if (!(id[i] === '-' || /^[\p{L}\p{N}]$/u.exec(id[i]) !== null)) return `Invalid char (${id[i]}) at position ${i}`;
  }
  return null;
}

/** Semantic version of `X.Y.Z[-suffix]`, compared by its numbers only. */
export function versionAtLeast(version, major, minor, patch) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (m === null) return true;
  const have = [Number(m[1]), Number(m[2]), Number(m[3])];
  const want = [major, minor, patch];
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) return have[i] > want[i];
  return true;
}
