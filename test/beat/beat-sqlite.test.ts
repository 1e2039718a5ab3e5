// Periodic tasks on the SQLite broker, real processes: two `asynx beat` and two `asynx worker -B` on one file send
// each due second exactly once (counted by a ledger task), a leader killed -9 is replaced within 5 s, and the
// three catch-up policies after a 10 s stop; `asynx multi` passes -B to its node.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import type { Spawned } from '../helpers/process.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli } from '../helpers/worker.js';
import { BEAT_APP, beat, leaderTimes, leadsNow, ledger, missingSeconds, repeated, sentLines, workerB } from './beat-helpers.js';

const tmp = tempDir('asynx-beat-');
const procs: Spawned[] = [];
after(async () => {
  for (const p of procs) if (!p.isDone()) await p.kill9().catch(() => undefined);
  tmp.cleanup();
});
const track = (p: Spawned): Spawned => (procs.push(p), p);

function envFor(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv & { BEAT_LEDGER: string } {
  return { ...process.env, NO_COLOR: '1', ASYNX_CONFIG: '', ASYNX_BROKER_URL: `sqlite://${join(tmp.dir, `${name}.db`)}`, BEAT_LEDGER: join(tmp.dir, `${name}.ledger`), ...extra };
}

describe('beat on SQLite', () => {
  it('2 beats + 2 worker -B for 60 s: every due second sent and run once; leader kill -9 → takeover within 5 s', { timeout: 180_000 }, async () => {
    const env = envFor('ha', { BEAT_EVERY: '1', BEAT_CATCH_UP: 'all' });
    const beats = [track(beat(env)), track(beat(env))];
    await waitFor('a leader among the beats', () => beats.some(leadsNow), 60_000);
    const workers = [track(workerB(env, 'w1')), track(workerB(env, 'w2'))];
    const all = [...beats, ...workers];
    await waitFor('both -B workers ready', () => workers.every((w) => / ready\.$/m.test(w.output())), 60_000);
    const firstRun = await waitFor('the first ledger line', () => ledger(env.BEAT_LEDGER)[0], 30_000);
    await sleep(Math.max(0, firstRun.due + 60_000 - Date.now()));

    const leader = all.find((p) => !p.isDone() && leadsNow(p));
    assert.ok(leader, all.map((p) => p.output()).join('\n----\n'));
    const before = all.flatMap(sentLines);
    await leader.kill9();
    const killedAt = Date.now();
    const others = all.filter((p) => p !== leader);
    const next = await waitFor('a send by another scheduler after the kill', () => others.flatMap(sentLines).find((s) => !before.some((b) => b.taskId === s.taskId)), 30_000);
    const newLeader = others.find((p) => sentLines(p).some((s) => s.taskId === next.taskId))!;
    const takeover = leaderTimes(newLeader).at(-1)! - killedAt;
    assert.ok(takeover <= 5_000, `the new leader took over ${takeover} ms after the kill`);
    await sleep(4_000);
    for (const p of others) assert.equal(await p.stop('SIGTERM', 20_000), 0, p.output());

    const sent = all.flatMap(sentLines);
    const ran = ledger(env.BEAT_LEDGER);
    const dues = sent.map((s) => s.due);
    assert.deepEqual(repeated(dues), [], 'a due time sent twice');
    assert.deepEqual(repeated(ran.map((r) => r.due)), [], 'a due time run twice');
    const first = Math.min(...dues);
    const last = Math.max(...dues);
    assert.ok(last - first >= 60_000, `sent from ${new Date(first).toISOString()} to ${new Date(last).toISOString()}`);
    // catchUp 'all': the takeover gap is filled too. A kill -9 between a claim and its send loses that one run
    // (written before the send: never twice), so at most one second near the kill may be missing.
    const missing = missingSeconds(dues, first, last);
    assert.ok(missing.length <= 1 && missing.every((m) => Math.abs(m - killedAt) < 3_000), `missing: ${missing.map((m) => new Date(m).toISOString()).join(', ')}`);
    // Every sent run was run by a worker, except those a killed -B worker had taken (async pool, acks early).
    const notRun = sent.filter((s) => !ran.some((r) => r.due === s.due));
    assert.ok(notRun.length === 0 || (workers.includes(leader) && notRun.length <= 4), `sent, never run: ${notRun.map((s) => new Date(s.due).toISOString()).join(', ')}`);
    // Both kinds of scheduler ran one (beats and -B workers alike).
    for (const p of all) assert.match(p.output(), /beat: 1 entry \(ledger\)/);
  });

  it("catch-up policies after a 10 s stop: 'none' skips, 'latest' sends one, 'all' sends each", { timeout: 120_000 }, async () => {
    const env = envFor('catchup', { BEAT_EVERY: '1', BEAT_CATCH_UP: 'each' });
    const worker = track(workerB(env, 'c1', []));
    const first = track(beat(env));
    await waitFor('two runs of each entry', () => ['none', 'latest', 'all'].every((p) => sentLines(first).filter((s) => s.entry === `ledger-${p}`).length >= 2), 60_000);
    assert.equal(await first.stop('SIGTERM', 20_000), 0, first.output());
    const stoppedAt = Date.now();
    await sleep(10_000);
    const second = track(beat(env));
    await waitFor('three runs of each entry after the restart', () => ['none', 'latest', 'all'].every((p) => sentLines(second).filter((s) => s.entry === `ledger-${p}` && s.due > leaderTimes(second)[0]!).length >= 3), 60_000);
    assert.equal(await second.stop('SIGTERM', 20_000), 0, second.output());
    const lead = leaderTimes(second)[0]!;
    assert.ok(lead - stoppedAt >= 10_000);
    const sentAll = [...sentLines(first), ...sentLines(second)];
    await waitFor('the worker ran every sent run', () => ledger(env.BEAT_LEDGER).length >= sentAll.length, 30_000);
    assert.equal(await worker.stop('SIGTERM', 20_000), 0, worker.output());

    const ran = ledger(env.BEAT_LEDGER);
    for (const policy of ['none', 'latest', 'all']) {
      const name = `ledger-${policy}`;
      const before = sentLines(first).filter((s) => s.entry === name).map((s) => s.due);
      const afterRestart = sentLines(second).filter((s) => s.entry === name).map((s) => s.due);
      const lastBefore = Math.max(...before);
      // The due times missed while no beat ran: (last run before the stop, the new leader's start].
      const missed: number[] = [];
      for (let t = lastBefore + 1000; t <= lead; t += 1000) missed.push(t);
      assert.ok(missed.length >= 9, `${name}: ${missed.length} missed`);
      const backfilled = afterRestart.filter((d) => d <= lead);
      if (policy === 'none') assert.deepEqual(backfilled, [], name);
      if (policy === 'latest') assert.deepEqual(backfilled, [missed.at(-1)], name);
      if (policy === 'all') assert.deepEqual(backfilled, missed, name);
      // After the catch-up, every due second is sent (and run) once.
      const later = afterRestart.filter((d) => d > lead);
      assert.deepEqual(missingSeconds(later, Math.min(...later), Math.max(...later)), [], name);
      assert.deepEqual(repeated([...before, ...afterRestart]), [], name);
      assert.deepEqual(ran.filter((r) => r.entry === name).map((r) => r.due).sort((a, b) => a - b), [...before, ...afterRestart].sort((a, b) => a - b), `${name}: the ledger ran what was sent`);
    }
  });

  it('asynx multi passes -B to its node, which sends the periodic tasks', { timeout: 90_000 }, async () => {
    const env = envFor('multi', { BEAT_EVERY: '1' });
    const runDir = join(tmp.dir, 'run');
    const opts = [`--pidfile=${runDir}/%n.pid`, `--logfile=${runDir}/%n%I.log`];
    const start = await runCli(['multi', 'start', 'm1', '-A', BEAT_APP, '-B', '-P', 'solo', ...opts], env, 60_000, tmp.dir);
    try {
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const runs = await waitFor('three ledger lines from the node', () => (ledger(env.BEAT_LEDGER).length >= 3 ? ledger(env.BEAT_LEDGER) : null), 30_000);
      assert.deepEqual(repeated(runs.map((r) => r.due)), []);
    } finally {
      const stop = await runCli(['multi', 'stopwait', 'm1', '--timeout=20', ...opts], env, 60_000, tmp.dir);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    }
  });

  it('asynx beat --list shows app and config-file entries with the next run in their timezone', async () => {
    const cfg = join(tmp.dir, 'asynx.config.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(cfg, JSON.stringify({ periodic: { noon: { task: 'beat.ledger', schedule: { cron: '0 12 * * *', tz: 'Europe/Berlin' }, args: ['noon'], catchUp: 'none' } } }));
    const r = await runCli(['beat', '-A', BEAT_APP, '--list', '--config', cfg], envFor('list'), 30_000, tmp.dir);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+TASK\s+SCHEDULE\s+NEXT RUN\s+CATCH-UP$/);
    assert.match(lines[1]!, /^ledger\s+beat\.ledger\s+every 1s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+00:00\s+latest$/);
    assert.match(lines[2]!, /^noon\s+beat\.ledger\s+cron 0 12 \* \* \* \(Europe\/Berlin\)\s+\d{4}-\d\d-\d\d 12:00:00 GMT\+0[12]:00\s+none$/);
    writeFileSync(cfg, JSON.stringify({ periodic: { bad: { task: 'beat.ledger', schedule: { cron: '0 12 * * *', tz: 'Berlin' } } } }));
    const bad = await runCli(['beat', '-A', BEAT_APP, '--list', '--config', cfg], envFor('list'), 30_000, tmp.dir);
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /Periodic entry 'bad': schedule\.tz must be an IANA timezone/);
  });
});
