// Layer and cycle rules for src/ (`depcruise src --config .dependency-cruiser.cjs`, part of `npm test`'s pretest).
//
// Layers point one way: cli → multi | worker → app → protocol, transports, results; control (remote control) sits
// under worker, process (pidfiles, /proc) under multi and worker. tasks/ (built-in tasks) is part of the app
// layer: app registers them, and they are written against app's Task, AsyncResult and TaskContext. errors.ts,
// config.ts, urls.ts and util/ are leaves. The library never imports the CLI, and nothing in src/ imports the
// tests, the benchmark or the examples (they are not shipped).

/** `src/<folder>/` or `src/<file>.ts` as a path pattern. */
const dir = (name) => `^src/${name}/`;
const LEAVES = '^src/(errors|config|urls)[.]ts$|^src/util/';
const layer = (name, notTo, comment) => ({
  name: `layer-${name}`,
  comment,
  severity: 'error',
  from: { path: dir(name) },
  to: { path: notTo },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles hide the order in which modules start; split the shared part into a lower layer.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-tests-bench-examples',
      comment: 'What ships is the runtime: src/ never imports test/, bench/ or examples/.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|examples)/' },
    },
    {
      name: 'library-not-to-cli',
      comment: 'The library never prints or exits: only src/cli/ may import src/cli/.',
      severity: 'error',
      from: { path: '^src/', pathNot: dir('cli') },
      to: { path: dir('cli') },
    },
    {
      name: 'leaves-import-only-leaves',
      comment: 'errors.ts, config.ts, urls.ts and util/ are leaves: they import only each other (config.ts validates URLs with urls.ts).',
      severity: 'error',
      from: { path: LEAVES },
      to: { path: '^src/', pathNot: '^src/(errors|urls)[.]ts$|^src/util/' },
    },
    layer('multi', `${dir('worker')}|${dir('control')}`, 'multi supervises worker processes; it never imports the worker (they are peers under cli).'),
    layer('worker', dir('multi'), 'The worker never imports multi (they are peers under cli).'),
    layer('dead', `${dir('worker')}|${dir('multi')}|${dir('control')}|${dir('process')}`, 'Dead-letter stores sit beside app, over transports and protocol.'),
    layer('amqp', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}|${dir('results')}|${dir('transports')}|${dir('dead')}|${dir('sqlite')}`, 'The AMQP connection layer sits under transports, results and control.'),
    layer('sqlite', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}|${dir('results')}|${dir('transports')}|${dir('dead')}|${dir('amqp')}`, 'The SQLite database layer sits under the SQLite transport and result store.'),
    layer('beat', `${dir('worker')}|${dir('multi')}|${dir('control')}|${dir('process')}|${dir('dashboard')}`, 'The periodic-task scheduler is a client of the app (it sends through it); worker -B and the CLI start it.'),
    layer('app', `${dir('worker')}|${dir('multi')}|${dir('control')}|${dir('process')}`, 'app sits under worker and multi.'),
    layer('control', `${dir('worker')}|${dir('multi')}|${dir('app')}`, 'Remote control sits under the worker.'),
    layer('events', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}|${dir('results')}|${dir('dashboard')}`, 'Celery events (publish, receive, state) sit under worker and app, beside control, over transports, amqp and sqlite.'),
    layer('dashboard', `${dir('worker')}|${dir('multi')}`, 'The web dashboard is a client of the cluster (app, events, control, transports); it never runs a worker.'),
    layer('canvas', `${dir('worker')}|${dir('multi')}|${dir('process')}|${dir('cli')}`, 'The canvas (signatures, chain, group, chord) is part of the app layer; the worker uses its chord counting. GroupResult.revoke() is a remote-control client, as the dashboard is.'),
    layer('tasks', `${dir('worker')}|${dir('multi')}|${dir('control')}|${dir('process')}`, 'Built-in tasks are part of the app layer.'),
    layer('process', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('protocol')}|${dir('transports')}|${dir('results')}`, 'Process facts (pidfiles, /proc) are a service for multi and the worker.'),
    layer('results', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}`, 'Result backends sit under app.'),
    layer('transports', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}|${dir('results')}`, 'Transports sit under app and results.'),
    layer('protocol', `${dir('worker')}|${dir('multi')}|${dir('app')}|${dir('control')}|${dir('tasks')}|${dir('process')}|${dir('results')}|${dir('transports')}`, 'The protocol layer is pure: types and codec, no I/O.'),
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve fails at run time.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      comment: 'src/ ships: it may not import a devDependency (types excepted), or it breaks for users.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: '(^|/)node_modules/@types/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count for layers and cycles: they couple the code as much as value imports do.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
  },
};
