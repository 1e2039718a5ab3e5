// `asynx init <kind>`: renders a deployment template from templates/ into the host project, paths and nodes filled in.

import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AsynxError, ExitCode, UsageError, isAsynxError } from '../errors.js';
import { asynxBin, planMulti } from '../multi/nodes.js';
import type { CliIo } from './multi.js';

/** The templates `asynx init` knows, their file in templates/ and the default output path. */
const KINDS = {
  systemd: { file: 'asynx.service', out: 'asynx.service', next: 'sudo cp asynx.service /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now asynx' },
  initd: { file: 'asynx.init.sh', out: 'asynx.init.sh', next: 'sudo cp asynx.init.sh /etc/init.d/asynx && sudo /etc/init.d/asynx start' },
  supervisord: { file: 'asynx.supervisord.conf', out: 'asynx.supervisord.conf', next: 'include it from supervisord.conf ([include] files = ...), then: supervisorctl update' },
  'npm-scripts': { file: 'npm-scripts.json', out: 'package.json', next: 'npm run workers:start   (also workers:stop, workers:restart, workers:status, workers:kill)' },
  config: { file: 'asynx.config.mjs', out: 'asynx.config.mjs', next: 'edit brokerUrl, then: asynx worker -A <app module>' },
} as const;

type Kind = keyof typeof KINDS;

/** Resolved `asynx init` options. */
export interface InitOptions {
  kind: Kind;
  /** multi node list: `2` or `w1 w2`. */
  nodes: string;
  app: string;
  concurrency: number;
  loglevel: string;
  user: string;
  workdir: string;
  /** Seconds a node gets to finish its tasks on stop before KILL. */
  timeout: number;
  broker: string;
  /** Output path, or `-` for stdout. */
  out: string;
  force: boolean;
}

const USAGE = `Usage: asynx init <systemd|initd|supervisord|npm-scripts|config> [options]

Options:
  --nodes=<N or names>     nodes, multi syntax: 3, or w1,w2 (default: 2)
  --app=<module>           app module for -A (default: ./tasks.mjs)
  --concurrency=<n>        pool size per node (default: 2)
  --loglevel=<level>       (default: info)
  --user=<name>            user the service runs as (default: you)
  --workdir=<dir>          the project directory (default: the current one)
  --timeout=<s>            seconds a node gets to finish running tasks on stop (default: 300)
  --broker=<url>           config: broker URL (default: sqlite://./.asynx/asynx.db)
  --out=<path>             where to write (default per kind; '-' prints); --force overwrites
`;

function valueOf(argv: string[], i: number, name: string): [string, number] {
  const token = argv[i] as string;
  const eq = token.indexOf('=');
  if (eq !== -1) return [token.slice(eq + 1), i];
  const next = argv[i + 1];
  if (next === undefined || next.startsWith('--')) throw new UsageError('asynx.init.missingValue', `Option --${name} needs a value: --${name}=<value>`, { option: `--${name}` });
  return [next, i + 1];
}

/** Parses `asynx init` argv (after `init`). */
export function parseInitArgs(argv: string[], cwd: string): InitOptions {
  const kind = argv[0];
  if (kind === undefined || !(kind in KINDS)) {
    throw new UsageError('asynx.init.unknownKind', `${kind === undefined ? 'Missing template' : `Unknown template '${kind}'`}: use one of ${Object.keys(KINDS).join(', ')}`, { value: kind });
  }
  const opts: InitOptions = {
    kind: kind as Kind, nodes: '2', app: './tasks.mjs', concurrency: 2, loglevel: 'info', user: userInfo().username,
    workdir: cwd, timeout: 300, broker: 'sqlite://./.asynx/asynx.db', out: '', force: false,
  };
  for (let i = 1; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--force') {
      opts.force = true;
      continue;
    }
    const name = /^--([a-z-]+)/.exec(token)?.[1];
    if (name === undefined) throw new UsageError('asynx.init.badArgument', `Unexpected argument '${token}': options are --name=value`, { value: token });
    const [value, at] = valueOf(argv, i, name);
    i = at;
    switch (name) {
      case 'nodes': opts.nodes = value.split(/[\s,]+/).filter(Boolean).join(' '); break;
      case 'app': opts.app = value; break;
      case 'concurrency': opts.concurrency = positive(value, '--concurrency'); break;
      case 'loglevel': opts.loglevel = value; break;
      case 'user': opts.user = value; break;
      case 'workdir': opts.workdir = resolve(cwd, value); break;
      case 'timeout': opts.timeout = positive(value, '--timeout'); break;
      case 'broker': opts.broker = value; break;
      case 'out': opts.out = value; break;
      default: throw new UsageError('asynx.init.unknownOption', `Unknown option --${name}: see 'asynx init --help'`, { option: `--${name}` });
    }
  }
  if (opts.nodes === '') throw new UsageError('asynx.init.noNodes', '--nodes is empty: give a count (3) or names (w1,w2)', { option: '--nodes' });
  if (opts.out === '') opts.out = KINDS[opts.kind].out;
  return opts;
}

function positive(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError('asynx.init.badNumber', `${option} must be a whole number ≥ 1, got '${value}'`, { option, value });
  return n;
}

function templatePath(file: string): string {
  return fileURLToPath(new URL(`../../templates/${file}`, import.meta.url));
}

function fill(text: string, vars: Record<string, string>): string {
  return text.replace(/\{\{([A-Z_]+)\}\}/g, (m, key: string) => vars[key] ?? m);
}

/** Renders the template's text for the options (pure apart from reading the template). */
export function renderTemplate(opts: InitOptions): string {
  const shorts = planMulti([...opts.nodes.split(' '), '--hostname=localhost'], opts.workdir).nodes.map((n) => n.name.short);
  const vars: Record<string, string> = {
    NODES: opts.nodes,
    APP: opts.app,
    CONCURRENCY: String(opts.concurrency),
    LOGLEVEL: opts.loglevel,
    USER: opts.user,
    WORKDIR: opts.workdir,
    TIMEOUT: String(opts.timeout),
    WAIT_TIMEOUT: String(opts.timeout + 15),
    STOP_TIMEOUT: String(opts.timeout + 30),
    BROKER: opts.broker,
    NODE: process.execPath,
    ASYNX_BIN: asynxBin(),
    PROGRAMS: shorts.map((s) => `asynx-${s}`).join(','),
  };
  const text = readFileSync(templatePath(KINDS[opts.kind].file), 'utf8');
  const expanded = text.replace(/\{\{#each node\}\}\n([\s\S]*?)\{\{\/each\}\}\n?/g, (_m, block: string) =>
    shorts.map((short) => fill(block, { ...vars, SHORT: short })).join('\n'));
  return fill(expanded, vars);
}

/** Adds the rendered scripts to a package.json; existing scripts of the same name are kept unless `force`. */
function mergeScripts(path: string, rendered: string, force: boolean): { text: string; added: string[]; kept: string[] } {
  if (!existsSync(path)) throw new UsageError('asynx.init.noPackageJson', `No package.json at ${path}: run 'npm init' first, or pass --out=<path to package.json>`, { path });
  const pkg = JSON.parse(readFileSync(path, 'utf8')) as { scripts?: Record<string, string> };
  const scripts = JSON.parse(rendered) as Record<string, string>;
  pkg.scripts ??= {};
  const added: string[] = [];
  const kept: string[] = [];
  for (const [name, cmd] of Object.entries(scripts)) {
    if (pkg.scripts[name] !== undefined && pkg.scripts[name] !== cmd && !force) kept.push(name);
    else {
      pkg.scripts[name] = cmd;
      added.push(name);
    }
  }
  return { text: `${JSON.stringify(pkg, null, 2)}\n`, added, kept };
}

/** Runs `asynx init` with `argv` (everything after `init`); resolves to the exit code. */
export async function runInitCli(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout.write(USAGE);
    return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
  }
  try {
    const opts = parseInitArgs(argv, io.cwd);
    const rendered = renderTemplate(opts);
    if (opts.out === '-') {
      io.stdout.write(rendered);
      return ExitCode.ok;
    }
    const out = resolve(io.cwd, opts.out);
    if (opts.kind === 'npm-scripts') {
      const merged = mergeScripts(out, rendered, opts.force);
      writeFileSync(out, merged.text);
      io.stdout.write(`Added scripts to ${out}: ${merged.added.join(', ') || '(none)'}\n`);
      if (merged.kept.length > 0) io.stdout.write(`Kept your existing ${merged.kept.join(', ')} (pass --force to replace)\n`);
    } else {
      if (existsSync(out) && !opts.force) throw new UsageError('asynx.init.exists', `${out} already exists: pass --force to overwrite, or --out=<other path>`, { path: out });
      writeFileSync(out, rendered);
      if (opts.kind === 'initd') chmodSync(out, 0o755);
      io.stdout.write(`Wrote ${out}\n`);
    }
    io.stdout.write(`Next: ${KINDS[opts.kind].next}\n`);
    return ExitCode.ok;
  } catch (err) {
    if (isAsynxError(err)) {
      io.stderr.write(`Error: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    const failed = new AsynxError('asynx.init.unwritable', `${(err as Error).message}: pass --out=<writable path>, or run as a user that can write there`, { exitCode: ExitCode.cantCreate, cause: err });
    io.stderr.write(`Error: ${failed.message}\n`);
    return failed.exitCode;
  }
}
