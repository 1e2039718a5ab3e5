// The nodes `multi status` lists when given no names (as `pm2 ls`): the pidfiles found under the --pidfile template.

import { readdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { readPidfile } from '../process/pidfile.js';
import { UsageError } from '../errors.js';
import type { ParsedArgs } from './args.js';
import { DEFAULT_PIDFILE, hostPart } from './nodes.js';

/** Where discovery looked and the full node names it found there, sorted. */
export interface Discovered {
  dir: string;
  names: string[];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A pidfile name template (`%n.pid`) as a pattern; `short`/`full` capture the node name it was expanded with. */
function namePattern(template: string): RegExp {
  let source = '';
  for (const part of template.split(/(%.)/)) {
    if (part === '%n' || part === '%N') source += '(?<short>[^/@]+)';
    else if (part === '%h' || part === '%p') source += '(?<full>[^/]+@[^/]*)';
    else if (part === '%d') source += '[^/]*';
    else if (part === '%i') source += '0';
    else if (part === '%I') source += '';
    else if (part === '%%') source += '%';
    else source += escapeRegExp(part);
  }
  return new RegExp(`^${source}$`);
}

/**
 * Lists the nodes whose pidfiles are in the directory of the global `--pidfile` template (default
 * `./.asynx/run/%n.pid`), named from the file (`node=` line) or from the file name. The directory part must not
 * depend on the node (`/run/%n/pid` cannot be listed): that is a usage error asking for the node names.
 */
export function discoverNodes(parsed: ParsedArgs, cwd: string): Discovered {
  const template = [...parsed.options].reverse().find((o) => o.key === '--pidfile' && o.namespace === null)?.value ?? DEFAULT_PIDFILE;
  const dirTemplate = dirname(template);
  if (/%[^%]/.test(dirTemplate.replace(/%%/g, ''))) {
    throw new UsageError('asynx.multi.cannotDiscover', `Cannot list the nodes of --pidfile=${template}: its directory depends on the node; name the nodes (asynx multi status w1 w2 ...)`, { option: '--pidfile', value: template });
  }
  const dir = resolve(cwd, dirTemplate.replace(/%%/g, '%'));
  const pattern = namePattern(basename(template));
  const host = hostPart(parsed.settings);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return { dir, names: [] };
  }
  const names = new Set<string>();
  for (const file of files) {
    const m = pattern.exec(file);
    if (m === null) continue;
    let recorded: string | null = null;
    try {
      recorded = readPidfile(resolve(dir, file))?.node ?? null;
    } catch {
      // unreadable: named from the file name; status reports why
    }
    const { short, full } = m.groups ?? {};
    const fromName = full ?? (short === undefined ? null : `${short}@${host}`);
    // The recorded name wins only when it maps back to this same file.
    const fits = recorded !== null && (full !== undefined ? recorded === full : short === undefined || recorded.split('@')[0] === short);
    const name = fits ? recorded : fromName;
    if (name !== null) names.add(name);
  }
  return { dir, names: [...names].sort() };
}
