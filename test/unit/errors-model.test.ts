// Static guard for the one error model: parses src/**/*.ts and fails on plain Errors, exit-code literals and reused codes.
//
// The rules, precisely:
//  1. plain-error: no `new Error(...)` (nor TypeError, RangeError, ...) anywhere in src/, and no `throw 'text'`,
//     except ALLOWED below.
//  2. exit-code-literal: an exit code is always `ExitCode.x`. Flagged: `exitCode: <number>`, `x.exitCode = <number>`,
//     `process.exit(<number other than 0>)`, and `const EXIT_* = <number>` (a second table of exit codes).
//  3. code-reused: every dotted code literal ('asynx.area.name') passed to an error constructor (AsynxError or any
//     subclass in src/errors.ts, `super(...)` inside those classes, or `toAsynxError`) appears at exactly ONE
//     construction site in src/. Two places that throw the same code must share one factory function (or class),
//     so one code always means one fault with one message template. A code passed through a variable or a class
//     with a fixed code is not a literal and is counted where the literal is.
//  4. code-shape: a string literal given as the code must look like `asynx.<area>.<camelCaseName>`.
// PENDING lists today's violations in files other helpers own; the lead deletes each entry as its fix lands. An
// entry that no longer matches anything fails the test too, so the list can only shrink.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/worker.js';

type Rule = 'plain-error' | 'exit-code-literal' | 'code-reused' | 'code-shape';

interface Violation {
  rule: Rule;
  file: string;
  line: number;
  text: string;
  detail: string;
}

interface Known {
  rule: Rule;
  file: string;
  /** A substring of the offending source line. */
  snippet: string;
  /** Why it is allowed (ALLOWED) or what the fix is (PENDING). */
  why: string;
}

/** Deliberate exceptions. Keep this short; each needs a reason. */
const ALLOWED: Known[] = [
  {
    rule: 'plain-error',
    file: 'src/worker/pool/job-runner.ts',
    snippet: 'encodeError(new TypeError(',
    why: 'not thrown: it becomes the task\'s stored failure, and Celery clients expect exc_type TypeError for a result that cannot be serialised',
  },
];

/** Violations in files owned by other helpers on 2026-12-01; see the report of H5 for each fix. */
const PENDING: Known[] = [
  { rule: 'code-reused', file: 'src/urls.ts', snippet: "'asynx.config.badBroker'", why: 'H4: same factory as config.ts' },
];

const CODE_SHAPE = /^asynx\.[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)+$/;
const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(p));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/**
 * AsynxError and every class in errors.ts that extends it (directly or not), each mapped to whether its
 * constructor takes the code as its first argument (`UsageError(code, message)`) or fixes it itself
 * (`BrokerUnavailableError(message)`, whose one construction site is its `super(...)` call).
 */
export function errorClassNames(errorsSource: string): Map<string, boolean> {
  const sf = ts.createSourceFile('errors.ts', errorsSource, ts.ScriptTarget.ES2022, true);
  const parents = new Map<string, { parent: string; takesCode: boolean | null }>();
  sf.forEachChild((node) => {
    if (ts.isClassDeclaration(node) && node.name) {
      const ext = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      const ctor = node.members.find(ts.isConstructorDeclaration);
      const first = ctor?.parameters[0]?.name;
      parents.set(node.name.text, { parent: ext && ts.isIdentifier(ext) ? ext.text : '', takesCode: ctor ? (first !== undefined && ts.isIdentifier(first) && first.text === 'code') : null });
    }
  });
  const names = new Map<string, boolean>([['AsynxError', true]]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [name, { parent, takesCode }] of parents) {
      if (!names.has(name) && names.has(parent)) {
        names.set(name, takesCode ?? names.get(parent)!);
        grew = true;
      }
    }
  }
  return names;
}

function literalText(node: ts.Node | undefined): string | null {
  if (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))) return node.text;
  return null;
}

interface Site {
  code: string;
  file: string;
  line: number;
  text: string;
}

/** Scans one file: returns its violations of rules 1, 2 and 4, and its code construction sites (for rule 3). */
export function scanSource(file: string, source: string, errorClasses: Map<string, boolean>): { violations: Violation[]; sites: Site[] } {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true);
  const lines = source.split('\n');
  const violations: Violation[] = [];
  const sites: Site[] = [];
  const at = (node: ts.Node) => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    return { line, text: lines[line - 1]!.trim() };
  };
  const flag = (rule: Rule, node: ts.Node, detail: string) => violations.push({ rule, file, ...at(node), detail });
  const isNumber = (n: ts.Node | undefined): n is ts.NumericLiteral => n !== undefined && ts.isNumericLiteral(n);

  const visit = (node: ts.Node, insideErrorClass: boolean): void => {
    let inClass = insideErrorClass;
    if (ts.isClassDeclaration(node) && node.name && errorClasses.has(node.name.text)) inClass = true;

    // Rule 1: plain errors.
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && BUILTIN_ERRORS.has(node.expression.text)) {
      flag('plain-error', node, `new ${node.expression.text}(...): throw an AsynxError (or toAsynxError(err, code, message))`);
    }
    if (ts.isThrowStatement(node) && (ts.isStringLiteral(node.expression) || ts.isTemplateExpression(node.expression) || ts.isNoSubstitutionTemplateLiteral(node.expression))) {
      flag('plain-error', node, 'throw of a string: throw an AsynxError');
    }
    // Rule 2: exit-code literals.
    if (ts.isPropertyAssignment(node) && node.name.getText(sf) === 'exitCode' && isNumber(node.initializer)) {
      flag('exit-code-literal', node, `exitCode: ${node.initializer.text}: use ExitCode.*`);
    }
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(node.left) && node.left.name.text === 'exitCode' && isNumber(node.right)) {
      flag('exit-code-literal', node, `exitCode = ${node.right.text}: use ExitCode.*`);
    }
    if (ts.isCallExpression(node) && node.expression.getText(sf) === 'process.exit' && isNumber(node.arguments[0]) && node.arguments[0].text !== '0') {
      flag('exit-code-literal', node, `process.exit(${node.arguments[0].text}): use ExitCode.*`);
    }
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && /^EXIT_/.test(node.name.text) && isNumber(node.initializer)) {
      flag('exit-code-literal', node, `${node.name.text} = ${node.initializer.text}: a second exit-code table; use ExitCode.*`);
    }
    // Rules 3 and 4: where codes are constructed.
    let codeArgs: readonly ts.Expression[] | null = null;
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && errorClasses.get(node.expression.text) === true) codeArgs = node.arguments ?? [];
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'toAsynxError') codeArgs = node.arguments.slice(1);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword && inClass) codeArgs = node.arguments;
    if (codeArgs && codeArgs.length > 0) {
      const code = literalText(codeArgs[0]);
      if (code !== null) {
        if (!CODE_SHAPE.test(code)) flag('code-shape', node, `'${code}' is not a dotted code like 'asynx.area.name'`);
        else sites.push({ code, file, ...at(node) });
      }
    }
    ts.forEachChild(node, (child) => visit(child, inClass));
  };
  visit(sf, false);
  return { violations, sites };
}

/** Rule 3 over all files: a code with more than one construction site flags every site. */
export function reusedCodes(sites: Site[]): Violation[] {
  const byCode = new Map<string, Site[]>();
  for (const s of sites) byCode.set(s.code, [...(byCode.get(s.code) ?? []), s]);
  const out: Violation[] = [];
  for (const [code, list] of byCode) {
    if (list.length < 2) continue;
    const where = list.map((s) => `${s.file}:${s.line}`).join(', ');
    for (const s of list) out.push({ rule: 'code-reused', file: s.file, line: s.line, text: s.text, detail: `'${code}' is constructed at ${list.length} places (${where}): give them one factory` });
  }
  return out;
}

function scanTree(): Violation[] {
  const srcDir = join(ROOT, 'src');
  const errorClasses = errorClassNames(readFileSync(join(srcDir, 'errors.ts'), 'utf8'));
  const all: Violation[] = [];
  const sites: Site[] = [];
  for (const path of sourceFiles(srcDir)) {
    const r = scanSource(relative(ROOT, path), readFileSync(path, 'utf8'), errorClasses);
    all.push(...r.violations);
    sites.push(...r.sites);
  }
  return [...all, ...reusedCodes(sites)];
}

const matches = (k: Known, v: Violation) => k.rule === v.rule && k.file === v.file && v.text.includes(k.snippet);
const show = (v: Violation) => `${v.file}:${v.line} [${v.rule}] ${v.detail}\n    ${v.text}`;

describe('the error model (static guard over src/)', () => {
  const classes = errorClassNames(readFileSync(join(ROOT, 'src', 'errors.ts'), 'utf8'));

  it('finds each kind of violation in a sample (the guard can fail)', () => {
    const sample = [
      "throw new Error('x');",
      "throw new AsynxError('asynx.demo.one', 'first', { exitCode: 73 });",
      "throw new UsageError('asynx.demo.one', 'second');",
      "throw new UsageError('Bad Code', 'third');",
      'process.exit(64);',
      'process.exit(0);',
      'const EXIT_FOO = 70;',
      "throw toAsynxError(err, 'asynx.demo.two', 'wrapped');",
    "throw new BrokerUnavailableError('a message, not a code');",
    'throw `text ${1}`;',
    ].join('\n');
    const r = scanSource('sample.ts', sample, classes);
    const found = [...r.violations, ...reusedCodes(r.sites)].map((v) => `${v.line}:${v.rule}`).sort();
    assert.deepEqual(found, ['1:plain-error', '2:code-reused', '2:exit-code-literal', '3:code-reused', '4:code-shape', '5:exit-code-literal', '7:exit-code-literal', '10:plain-error'].sort());
    assert.deepEqual(r.sites.map((s) => s.code), ['asynx.demo.one', 'asynx.demo.one', 'asynx.demo.two']);
  });

  it('knows the error classes of src/errors.ts', () => {
    for (const name of ['AsynxError', 'UsageError', 'ProtocolError']) assert.equal(classes.get(name), true, `${name} takes a code`);
    for (const name of ['BrokerUnavailableError', 'Retry', 'TimeLimitExceeded', 'TaskRevokedError']) assert.equal(classes.get(name), false, `${name} has its own code`);
    assert.ok(!classes.has('RemoteTaskError'), 'RemoteTaskError mirrors a remote exception, it is not an AsynxError');
  });

  it('src/ has no violation beyond the documented allowlist and the pending fixes', () => {
    const violations = scanTree();
    const known = [...ALLOWED, ...PENDING];
    const fresh = violations.filter((v) => !known.some((k) => matches(k, v)));
    const stale = known.filter((k) => !violations.some((v) => matches(k, v)));
    const report = [
      ...fresh.map((v) => `new violation: ${show(v)}`),
      ...stale.map((k) => `fixed (remove it from ${ALLOWED.includes(k) ? 'ALLOWED' : 'PENDING'}): ${k.file} [${k.rule}] ${k.snippet}`),
    ];
    assert.deepEqual(report, [], `\n${report.join('\n')}`);
  });
});
