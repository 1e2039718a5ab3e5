// `asynx init <kind>`: renders a deployment template from templates/ into the host project, paths and nodes filled in.

import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { DEFAULT_SQLITE_URL } from '../config.js';
import { AsynxError, ExitCode, UsageError, isAsynxError } from '../errors.js';
import { formatCliError, painter } from './output.js';
import { asynxBin, planMulti, shellQuote } from '../multi/nodes.js';
import type { CliIo } from './multi.js';

/** One file a template kind renders: its template in templates/ and its default output name. */
interface TemplateFile {
  file: string;
  out: string;
}

/** The templates `asynx init` knows; `systemd` renders two units into a directory. */
const KINDS = {
  systemd: { files: [{ file: 'asynx@.service', out: 'asynx@.service' }, { file: 'asynx.service', out: 'asynx.service' }], runsAsUser: true },
  initd: { files: [{ file: 'asynx.init.sh', out: 'asynx.init.sh' }], runsAsUser: true },
  supervisord: { files: [{ file: 'asynx.supervisord.conf', out: 'asynx.supervisord.conf' }], runsAsUser: true },
  'npm-scripts': { files: [{ file: 'npm-scripts.json', out: 'package.json' }], runsAsUser: false },
  config: { files: [{ file: 'asynx.config.mjs', out: 'asynx.config.mjs' }], runsAsUser: false },
} as const satisfies Record<string, { files: readonly TemplateFile[]; runsAsUser: boolean }>;

type Kind = keyof typeof KINDS;

/** Resolved `asynx init` options. */
export interface InitOptions {
  kind: Kind;
  /** multi node list: `2` or `w1 w2`. */
  nodes: string;
  app: string;
  concurrency: number;
  loglevel: string;
  /** Account the service runs as: the invoking user unless `--user` was given. */
  user: string;
  userExplicit: boolean;
  workdir: string;
  /** Seconds a node gets to finish its tasks on stop before KILL. */
  timeout: number;
  broker: string;
  /** `--broker` was given: the service files then set ASYNX_BROKER_URL themselves. */
  brokerExplicit: boolean;
  /** Output path (a directory for systemd), or `-` for stdout. */
  out: string;
  force: boolean;
}

const USAGE = `Usage: asynx init <systemd|initd|supervisord|npm-scripts|config> [options]

Templates:
  systemd        asynx@.service (one unit per node: crash restart, reload by HUP; recommended)
                 and asynx.service (every node through asynx multi, one unit); install one of them
  initd          LSB init script (start, stop, restart, reload, force-reload, status, ...)
  supervisord    one foreground program per node
  npm-scripts    workers:start/stop/restart/status/kill added to package.json
  config         asynx.config.mjs starter

Options:
  --nodes=<N or names>     nodes, multi syntax: 3, or w1,w2 (default: 2)
  --app=<module>           app module for -A (default: ./tasks.mjs)
  --concurrency=<n>        pool size per node (default: 2)
  --loglevel=<level>       (default: info)
  --user=<name>            user the service runs as (default: you; root only as --user=root)
  --workdir=<dir>          the project directory (default: the current one)
  --timeout=<s>            seconds a node gets to finish running tasks on stop (default: 300)
  --broker=<url>           broker URL: config's brokerUrl, ASYNX_BROKER_URL in the service files
                           (default: ${DEFAULT_SQLITE_URL}; service files then leave it to the environment)
  --out=<path>             where to write (default per kind; a directory for systemd; '-' prints)
  --force                  overwrite existing files (npm-scripts: replace scripts of the same name)
  -h, --help               this help

Examples:
  $ asynx init systemd --nodes=w1,w2 --app=./tasks.mjs --user=deploy
  $ asynx init initd --nodes=3 --app=./tasks.mjs --user=deploy --timeout=600
  $ asynx init supervisord --nodes=w1,w2 --app=./tasks.mjs --user=deploy --broker=amqp://guest:guest@localhost:5672//
  $ asynx init npm-scripts --nodes=2 --app=./tasks.mjs
  $ asynx init config --broker=amqp://guest:guest@localhost:5672//
  $ asynx init systemd --user=deploy --out=- --force
`;

function valueOf(argv: string[], i: number, name: string): [string, number] {
  const token = argv[i] as string;
  const eq = token.indexOf('=');
  if (eq !== -1) return [token.slice(eq + 1), i];
  const next = argv[i + 1];
  if (next === undefined || next.startsWith('--')) throw new UsageError('asynx.init.missingValue', `Option --${name} needs a value: --${name}=<value>`, { option: `--${name}` });
  return [next, i + 1];
}

/** Parses `asynx init` argv (after `init`); `invoker` is the account running init (the default --user). */
export function parseInitArgs(argv: string[], cwd: string, invoker: string = userInfo().username, env: NodeJS.ProcessEnv = process.env): InitOptions {
  const kind = argv[0];
  if (kind === undefined || !(kind in KINDS)) {
    throw new UsageError('asynx.init.unknownKind', `${kind === undefined ? 'Missing template' : `Unknown template '${kind}'`}: use one of ${Object.keys(KINDS).join(', ')}`, { value: kind });
  }
  const opts: InitOptions = {
    kind: kind as Kind, nodes: '2', app: './tasks.mjs', concurrency: 2, loglevel: 'info', user: invoker, userExplicit: false,
    workdir: cwd, timeout: 300, broker: DEFAULT_SQLITE_URL, brokerExplicit: false, out: '', force: false,
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
      case 'user': opts.user = value; opts.userExplicit = true; break;
      case 'workdir': opts.workdir = resolve(cwd, value); break;
      case 'timeout': opts.timeout = positive(value, '--timeout'); break;
      case 'broker': opts.broker = value; opts.brokerExplicit = true; break;
      case 'out': opts.out = value; break;
      default: throw new UsageError('asynx.init.unknownOption', `Unknown option --${name}: see 'asynx init --help'`, { option: `--${name}` });
    }
  }
  if (opts.nodes === '') throw new UsageError('asynx.init.noNodes', '--nodes is empty: give a count (3) or names (w1,w2)', { option: '--nodes' });
  if (opts.user === '') throw new UsageError('asynx.init.noUser', '--user is empty: name the account the service runs as', { option: '--user' });
  if (KINDS[opts.kind].runsAsUser && opts.user === 'root' && !opts.userExplicit) {
    const hint = env.SUDO_USER !== undefined && env.SUDO_USER !== '' && env.SUDO_USER !== 'root' ? ` (you ran sudo as ${env.SUDO_USER}: --user=${env.SUDO_USER})` : '';
    throw new UsageError('asynx.init.rootUser', `Refusing to render a service that runs as root just because init runs as root: pass --user=<the account that owns ${opts.workdir}>${hint}, or --user=root if root is really meant`, { option: '--user', value: 'root' });
  }
  if (opts.out === '') opts.out = opts.kind === 'systemd' ? '.' : KINDS[opts.kind].files[0].out;
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

/** `{{KEY}}` → value; systemd and supervisord expand `%` themselves, so values are written `%%` there. */
function fill(text: string, vars: Record<string, string>, escapePercent: boolean): string {
  return text.replace(/\{\{([A-Z_]+)\}\}/g, (m, key: string) => {
    const value = vars[key];
    if (value === undefined) return m;
    return escapePercent && !RAW_VARS.has(key) ? value.replaceAll('%', '%%') : value;
  });
}

/** Variables that are already written in the target format (comments, lines built with escaping). */
const RAW_VARS = new Set(['ASYNX_BIN_NOTE', 'ASYNX_BIN_NOTE_INI', 'ENV_BROKER', 'SUPERVISOR_ENV', 'SH_BROKER']);

/** The asynx a service should run: the project's node_modules/.bin/asynx if installed there, else this one. */
export function serviceAsynx(workdir: string): { exec: string; projectLocal: boolean } {
  const local = join(workdir, 'node_modules', '.bin', 'asynx');
  return existsSync(local) ? { exec: local, projectLocal: true } : { exec: asynxBin(), projectLocal: false };
}

/** Where the supervisord programs log: their own directory, never the .asynx/log files `multi` writes. */
function supervisorLogDir(workdir: string): string {
  return join(workdir, '.asynx', 'log', 'supervisord');
}

function variables(opts: InitOptions, shorts: string[]): Record<string, string> {
  const bin = serviceAsynx(opts.workdir);
  const note = bin.projectLocal
    ? `The project's own asynx (node_modules/.bin/asynx), run by the node that rendered this file.`
    : `No node_modules/.bin/asynx in ${opts.workdir} when this was rendered, so this runs the asynx at ${bin.exec}; after 'npm install asynx' in the project, render again with --force.`;
  const broker = opts.broker;
  return {
    NODES: opts.nodes,
    APP: opts.app,
    CONCURRENCY: String(opts.concurrency),
    LOGLEVEL: opts.loglevel,
    USER: opts.user,
    WORKDIR: opts.workdir,
    TIMEOUT: String(opts.timeout),
    WAIT_TIMEOUT: String(opts.timeout + 15),
    STOP_TIMEOUT: String(opts.timeout + 30),
    BROKER: broker,
    NODE: process.execPath,
    ASYNX_EXEC: bin.exec,
    ASYNX_BIN_NOTE: `# ${note}`,
    ASYNX_BIN_NOTE_INI: `; ${note}`,
    ENV_BROKER: opts.brokerExplicit
      ? `Environment="ASYNX_BROKER_URL=${broker.replaceAll('%', '%%').replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
      : `# No --broker given: ASYNX_BROKER_URL comes from the files above, else asynx.config.mjs, else ${DEFAULT_SQLITE_URL}.`,
    SH_BROKER: opts.brokerExplicit
      ? `ASYNX_BROKER_URL=${shellQuote(broker)}\nexport ASYNX_BROKER_URL`
      : `# No --broker given: set ASYNX_BROKER_URL in /etc/default/asynx (or brokerUrl in asynx.config.mjs).`,
    // supervisord: "..." quoting, % written %% (it expands %(name)s in values).
    SUPERVISOR_ENV: `ASYNX_BROKER_URL="${broker.replaceAll('%', '%%').replaceAll('"', '\\"')}"`,
    SUPERVISOR_LOG_DIR: supervisorLogDir(opts.workdir),
    INSTANCES: shorts.map((s) => `asynx@${s}`).join(' '),
    PROGRAMS: shorts.map((s) => `asynx-${s}`).join(','),
  };
}

/** Renders one template file's text for the options (pure apart from reading the template). */
export function renderFile(opts: InitOptions, file: string): string {
  const shorts = planMulti([...opts.nodes.split(' '), '--hostname=localhost'], opts.workdir).nodes.map((n) => n.name.short);
  const vars = variables(opts, shorts);
  const escape = file.endsWith('.service') || file.endsWith('.conf');
  const text = readFileSync(templatePath(file), 'utf8');
  const expanded = text.replace(/\{\{#each node\}\}\n([\s\S]*?)\{\{\/each\}\}\n?/g, (_m, block: string) =>
    shorts.map((short) => fill(block, { ...vars, SHORT: short }, escape)).join('\n'));
  return fill(expanded, vars, escape);
}

/** Renders the kind's first template (the only one, except systemd: asynx@.service). */
export function renderTemplate(opts: InitOptions): string {
  return renderFile(opts, KINDS[opts.kind].files[0].file);
}

/** What merging the rendered scripts into a package.json changed. */
interface ScriptsMerge {
  text: string;
  added: string[];
  replaced: string[];
  unchanged: string[];
  kept: string[];
}

/** Adds the rendered scripts to a package.json; existing scripts of the same name are kept unless `force`. */
function mergeScripts(path: string, rendered: string, force: boolean): ScriptsMerge {
  if (!existsSync(path)) throw new UsageError('asynx.init.noPackageJson', `No package.json at ${path}: run 'npm init' first, or pass --out=<path to package.json>`, { path });
  const pkg = JSON.parse(readFileSync(path, 'utf8')) as { scripts?: Record<string, string> };
  const scripts = JSON.parse(rendered) as Record<string, string>;
  pkg.scripts ??= {};
  const merge: ScriptsMerge = { text: '', added: [], replaced: [], unchanged: [], kept: [] };
  for (const [name, cmd] of Object.entries(scripts)) {
    const existing = pkg.scripts[name];
    if (existing === cmd) merge.unchanged.push(name);
    else if (existing !== undefined && !force) merge.kept.push(name);
    else {
      (existing === undefined ? merge.added : merge.replaced).push(name);
      pkg.scripts[name] = cmd;
    }
  }
  merge.text = `${JSON.stringify(pkg, null, 2)}\n`;
  return merge;
}

function writeScripts(out: string, rendered: string, force: boolean, io: CliIo): void {
  const m = mergeScripts(out, rendered, force);
  if (m.added.length > 0 || m.replaced.length > 0) writeFileSync(out, m.text);
  if (m.added.length > 0) io.stdout.write(`Added scripts to ${out}: ${m.added.join(', ')}\n`);
  if (m.replaced.length > 0) io.stdout.write(`Replaced scripts in ${out} (--force): ${m.replaced.join(', ')}\n`);
  if (m.added.length === 0 && m.replaced.length === 0) io.stdout.write(`Nothing added to ${out}: every asynx script is already there\n`);
  if (m.unchanged.length > 0 && (m.added.length > 0 || m.replaced.length > 0)) io.stdout.write(`Already there, unchanged: ${m.unchanged.join(', ')}\n`);
  if (m.kept.length > 0) io.stdout.write(`Kept your existing ${m.kept.join(', ')} (pass --force to replace)\n`);
}

/** Creates `dir` for the service user: when init runs as root for another account, that account owns what was made. */
function makeDirFor(dir: string, opts: InitOptions, io: CliIo): void {
  const created = mkdirSync(dir, { recursive: true });
  if (created === undefined || process.getuid?.() !== 0 || opts.user === 'root') return;
  try {
    execFileSync('chown', ['-R', `${opts.user}:`, created], { stdio: 'pipe' });
  } catch {
    io.stderr.write(`Warning: could not chown ${created} to ${opts.user}: run 'sudo chown -R ${opts.user}: ${created}'\n`);
  }
}

function nextHint(opts: InitOptions, written: string[]): string {
  const at = (name: string): string => written.find((p) => p.endsWith(`/${name}`)) ?? name;
  switch (opts.kind) {
    case 'systemd': {
      const shorts = planMulti([...opts.nodes.split(' '), '--hostname=localhost'], opts.workdir).nodes.map((n) => `asynx@${n.name.short}`);
      return `sudo cp ${at('asynx@.service')} /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now ${shorts.join(' ')}\n`
        + `      (or, one unit through asynx multi and no crash restart: sudo cp ${at('asynx.service')} /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now asynx; not both)`;
    }
    case 'initd':
      return `sudo cp ${at('asynx.init.sh')} /etc/init.d/asynx && sudo update-rc.d asynx defaults && sudo service asynx start   (set ASYNX_BROKER_URL in /etc/default/asynx)`;
    case 'supervisord':
      return `mkdir -p ${supervisorLogDir(opts.workdir)} (done if init wrote the file), include it from supervisord.conf ([include] files = ...), then: supervisorctl update`;
    case 'npm-scripts':
      return 'npm run workers:start   (also workers:stop, workers:restart, workers:status, workers:kill)';
    case 'config':
      return 'edit brokerUrl, then: asynx worker -A <app module>';
  }
}

/** Runs `asynx init` with `argv` (everything after `init`); resolves to the exit code. */
export async function runInitCli(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(USAGE);
    return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
  }
  try {
    const opts = parseInitArgs(argv, io.cwd, userInfo().username, io.env);
    const files = KINDS[opts.kind].files;
    if (opts.out === '-') {
      io.stdout.write(files.map((f) => (files.length > 1 ? `# ---- ${f.out} ----\n` : '') + renderFile(opts, f.file)).join('\n'));
      return ExitCode.ok;
    }
    const target = resolve(io.cwd, opts.out);
    if (opts.kind === 'npm-scripts') {
      writeScripts(target, renderFile(opts, files[0].file), opts.force, io);
      io.stdout.write(`Next: ${nextHint(opts, [target])}\n`);
      return ExitCode.ok;
    }
    const outs = opts.kind === 'systemd' ? files.map((f) => ({ ...f, path: join(target, f.out) })) : [{ ...files[0], path: target }];
    if (opts.kind === 'systemd' && existsSync(target) && !statSync(target).isDirectory()) {
      throw new UsageError('asynx.init.outNotDirectory', `--out=${opts.out} must be a directory for systemd (it writes asynx@.service and asynx.service there)`, { path: target });
    }
    for (const o of outs) {
      if (existsSync(o.path) && !opts.force) throw new UsageError('asynx.init.exists', `${o.path} already exists: pass --force to overwrite, or --out=<other path>`, { path: o.path });
    }
    const rendered = outs.map((o) => renderFile(opts, o.file));
    if (opts.kind === 'systemd') mkdirSync(target, { recursive: true });
    outs.forEach((o, k) => {
      writeFileSync(o.path, rendered[k] as string);
      if (opts.kind === 'initd') chmodSync(o.path, 0o755);
      io.stdout.write(`Wrote ${o.path}\n`);
    });
    if (opts.kind === 'supervisord') makeDirFor(supervisorLogDir(opts.workdir), opts, io);
    io.stdout.write(`Next: ${nextHint(opts, outs.map((o) => o.path))}\n`);
    return ExitCode.ok;
  } catch (err) {
    if (isAsynxError(err)) {
      io.stderr.write(formatCliError(err, painter(io.stderr, io.env), io.env));
      return err.exitCode;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    const failed = new AsynxError('asynx.init.unwritable', `${(err as Error).message}: pass --out=<writable path>, or run as a user that can write there`, { exitCode: ExitCode.cantCreate, cause: err });
    io.stderr.write(formatCliError(failed, painter(io.stderr, io.env), io.env));
    return failed.exitCode;
  }
}
