// Process entry of `asynx` (bin/asynx imports it): runs main() with the real streams, then sets the exit code.

import { ExitCode } from '../errors.js';
import { main } from './main.js';

// `asynx --help | head`: a closed pipe ends the output quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? ExitCode.ok);
    throw err;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain, then exit even if a library left a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    // main() turns every error into an exit code; reaching here is a bug in it.
    process.stderr.write(`asynx: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = ExitCode.software;
  },
);
