// Node names and the two `%` placeholder expanders (spec §7): the worker's and multi's.

import { hostname as osHostname } from 'node:os';
import { UsageError } from '../errors.js';

/** A node name split into its parts: `w1@vm.example.com` → short `w1`, host `vm.example.com`, domain `example.com`. */
export interface NodeName {
  full: string;
  short: string;
  host: string;
  domain: string;
}

/** One placeholder token: `%` followed by a single `[A-Za-z0-9_%]` character. A `%` followed by anything else stays literal. */
const TOKEN = /%([A-Za-z0-9_%])/g;

function domainOf(host: string): string {
  const dot = host.indexOf('.');
  return dot === -1 ? '' : host.slice(dot + 1);
}

function unknownToken(letter: string, template: string): UsageError {
  return new UsageError(
    'asynx.placeholder.unknown',
    `Unknown placeholder %${letter} in '${template}': use %n %h %d %p %i %I, or %% for a literal %`,
    { value: template, option: `%${letter}` },
  );
}

/**
 * Expands `%h` (host), `%n` (host without domain) and `%d` (domain) in a node name given on the command line,
 * as Celery's `host_format` does: `foo@%h` → `foo@vm`.
 */
function expandHostTokens(name: string, host: string): string {
  const short = host.split('.')[0] ?? host;
  return name.replace(TOKEN, (match, letter: string) => {
    switch (letter) {
      case 'h': return host;
      case 'n': return short;
      case 'd': return domainOf(host);
      case '%': return '%';
      default: return match;
    }
  });
}

/**
 * Splits a node name into its parts. A name without `@` gets the host appended (`w1` → `w1@<os hostname>`);
 * `%h`, `%n`, `%d` inside the name expand against that host first.
 */
export function splitNodeName(name: string, defaultHost: string = osHostname()): NodeName {
  const full = name.includes('@') ? expandHostTokens(name, defaultHost) : `${expandHostTokens(name, defaultHost)}@${defaultHost}`;
  const at = full.indexOf('@');
  const short = full.slice(0, at);
  const host = full.slice(at + 1);
  return { full, short, host, domain: domainOf(host) };
}

/**
 * Worker-side expansion (spec §7, worker column), used for `-n`, `--logfile` and `--pidfile`:
 * `%n` short name, `%h` host, `%d` domain, `%p` full node name, `%i` pool process index, `%I` index suffix,
 * `%%` a literal `%`. `index` undefined is the main process (`%i` → `0`, `%I` → ``); `k` a pool child
 * (`%i` → `k`, `%I` → `-k`). An unknown `%x` is a {@link UsageError} (exit 64), not a crash as in Celery.
 */
export function expandWorkerTemplate(template: string, nodeName: string, index?: number): string {
  const node = splitNodeName(nodeName);
  return template.replace(TOKEN, (_match, letter: string) => {
    switch (letter) {
      case 'n': return node.short;
      case 'h': return node.host;
      case 'd': return node.domain;
      case 'p': return node.full;
      case 'i': return String(index ?? 0);
      case 'I': return index === undefined ? '' : `-${index}`;
      case '%': return '%';
      default: throw unknownToken(letter, template);
    }
  });
}

/** How {@link expandMultiTemplate} treats `%%`. */
export type EscapeMode =
  /** `%%` → `%`: the value is final (option values the worker does not expand, `expand`). */
  | 'resolve'
  /** `%%` kept as `%%`: the value goes to the worker, which expands it again (`--pidfile`, `--logfile`). */
  | 'keep';

/**
 * Multi-side expansion (spec §7, multi column), used for option values, `--cmd`, `--append` and `expand`:
 * `%n`/`%N` short name, `%h`/`%p` full node name, `%d` host part. `%i` and `%I` are left for the worker.
 */
export function expandMultiTemplate(template: string, node: NodeName, escapes: EscapeMode = 'resolve'): string {
  return template.replace(TOKEN, (match, letter: string) => {
    switch (letter) {
      case 'n':
      case 'N': return node.short;
      case 'h':
      case 'p': return node.full;
      case 'd': return node.host;
      case 'i':
      case 'I': return match;
      case '%': return escapes === 'keep' ? '%%' : '%';
      default: throw unknownToken(letter, template);
    }
  });
}
