// Celery's remote-control commands (celery/worker/control.py `Panel.meta`): kind, positional arguments, signature.
//
// The CLI maps `asynx control rate_limit tasks.add 10/s` to `{task_name: 'tasks.add', rate_limit: '10/s'}`
// with this table, as `celery control` does with Panel.meta (args in order, then the variadic rest).

/** How a positional argument is converted (Celery's `str`, `int`, `float`, `strtobool`). */
export type ArgType = 'str' | 'int' | 'float' | 'bool';

/** One command's shape. */
export interface ControlCommand {
  name: string;
  /** `inspect` reads state; `control` changes it (Celery's Panel `type`). */
  kind: 'inspect' | 'control';
  /** Positional arguments in order: name, type, and whether it must be given. */
  args: ReadonlyArray<{ name: string; type: ArgType; required: boolean }>;
  /** The argument that takes the remaining positionals as a list (`task_id` of revoke). */
  variadic: string | null;
  /** Celery's signature text, for help and errors. */
  signature: string;
  help: string;
}

const cmd = (kind: 'inspect' | 'control', name: string, help: string, signature = '', args: ControlCommand['args'] = [], variadic: string | null = null): ControlCommand => ({ name, kind, args, variadic, signature, help });
const req = (name: string, type: ArgType = 'str') => ({ name, type, required: true });
const opt = (name: string, type: ArgType = 'str') => ({ name, type, required: false });

/** Every visible Celery 5.2 command; asynx nodes answer those their handlers implement. */
export const CONTROL_COMMANDS: readonly ControlCommand[] = [
  cmd('inspect', 'ping', 'Ping worker(s).'),
  cmd('inspect', 'stats', 'Request worker statistics/information.'),
  cmd('inspect', 'active', 'List of tasks currently being executed.'),
  cmd('inspect', 'reserved', 'List of currently reserved tasks, not including scheduled/active.'),
  cmd('inspect', 'scheduled', 'List of currently scheduled ETA/countdown tasks.'),
  cmd('inspect', 'registered', 'List of registered tasks.', '[attr1 [attr2 [... [attrN]]]]', [], 'taskinfoitems'),
  cmd('inspect', 'revoked', 'List of revoked task-ids.'),
  cmd('inspect', 'active_queues', 'List the task queues a worker is currently consuming from.'),
  cmd('inspect', 'query_task', 'Query for task information by id.', '[id1 [id2 [... [idN]]]]', [], 'ids'),
  cmd('inspect', 'conf', 'List configuration.', '[include_defaults=False]', [opt('with_defaults', 'bool')]),
  cmd('inspect', 'clock', 'Get current logical clock value.'),
  cmd('inspect', 'report', 'Information about the installation for bug reports.'),
  cmd('inspect', 'memsample', 'Sample current RSS memory usage.'),
  cmd('inspect', 'memdump', 'Dump statistics of previous memsample requests.', '[n_samples=10]', [opt('samples', 'int')]),
  cmd('inspect', 'objgraph', 'Create graph of uncollected objects (Python workers).', '[object_type=Request] [num=200 [max_depth=10]]', [opt('type'), opt('num', 'int'), opt('max_depth', 'int')]),
  cmd('control', 'revoke', 'Revoke task by task id (or list of ids).', '[id1 [id2 [... [idN]]]]', [], 'task_id'),
  cmd('control', 'terminate', 'Terminate task by task id (or list of ids).', '<signal> [id1 [id2 [... [idN]]]]', [req('signal')], 'task_id'),
  cmd('control', 'rate_limit', 'Tell worker(s) to modify the rate limit for a task by type.', '<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>', [req('task_name'), req('rate_limit')]),
  cmd('control', 'time_limit', 'Tell worker(s) to modify the time limit for task by type.', '<task_name> <soft_secs> [hard_secs]', [req('task_name'), req('soft', 'float'), opt('hard', 'float')]),
  cmd('control', 'election', 'Hold election.', '<id> <topic> [action]', [req('id'), req('topic'), opt('action')]),
  cmd('control', 'enable_events', 'Tell worker(s) to send task-related events.'),
  cmd('control', 'disable_events', 'Tell worker(s) to stop sending task-related events.'),
  cmd('control', 'heartbeat', 'Tell worker(s) to send event heartbeat immediately.'),
  cmd('control', 'pool_grow', 'Grow pool by n processes/threads.', '[N=1]', [opt('n', 'int')]),
  cmd('control', 'pool_shrink', 'Shrink pool by n processes/threads.', '[N=1]', [opt('n', 'int')]),
  cmd('control', 'pool_restart', 'Restart execution pool.'),
  cmd('control', 'autoscale', 'Modify autoscale settings.', '[max [min]]', [opt('max', 'int'), opt('min', 'int')]),
  cmd('control', 'shutdown', 'Shutdown worker(s).'),
  cmd('control', 'add_consumer', 'Tell worker(s) to consume from task queue by name.', '<queue> [exchange [type [routing_key]]]', [req('queue'), opt('exchange'), opt('exchange_type'), opt('routing_key')]),
  cmd('control', 'cancel_consumer', 'Tell worker(s) to stop consuming from task queue by name.', '<queue>', [req('queue')]),
];

/** The commands of one kind, by name. */
export function commandsOf(kind: 'inspect' | 'control'): ControlCommand[] {
  return CONTROL_COMMANDS.filter((c) => c.kind === kind);
}

/** Converts one positional, as Celery's `typ(arg)`; null when it does not parse. */
function convert(value: string, type: ArgType): unknown {
  if (type === 'str') return value;
  if (type === 'bool') {
    const v = value.toLowerCase();
    if (['y', 'yes', 't', 'true', 'on', '1'].includes(v)) return true;
    if (['n', 'no', 'f', 'false', 'off', '0'].includes(v)) return false;
    return null;
  }
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (type === 'int' && !Number.isInteger(n))) return null;
  return n;
}

/** Why positionals do not fit a command, or the `arguments` object they make. */
export type CompiledArguments = { ok: true; arguments: Record<string, unknown> } | { ok: false; problem: string };

/**
 * Celery's `_compile_arguments`: positionals fill `args` in order (converted), the rest go to the
 * variadic argument as a list; extra positionals without a variadic, a missing required one, or one
 * that does not convert are a problem (Celery would crash or send it on).
 */
export function compileArguments(command: ControlCommand, positionals: readonly string[]): CompiledArguments {
  const out: Record<string, unknown> = {};
  const rest = [...positionals];
  for (const a of command.args) {
    const value = rest.shift();
    if (value === undefined) {
      if (a.required) return { ok: false, problem: `<${a.name}> is missing` };
      break;
    }
    const v = convert(value, a.type);
    if (v === null) return { ok: false, problem: `${a.name} must be ${a.type === 'int' ? 'a whole number' : a.type === 'float' ? 'a number' : 'true or false'}, got '${value}'` };
    out[a.name] = v;
  }
  if (command.variadic) out[command.variadic] = rest;
  else if (rest.length) return { ok: false, problem: `unexpected ${rest.map((r) => `'${r}'`).join(' ')}` };
  return { ok: true, arguments: out };
}
