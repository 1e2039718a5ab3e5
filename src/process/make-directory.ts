// mkdir -p that always ends: one level at a time, so a path under /proc fails at once instead of looping.

import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Creates `dir` and any missing parents, one `mkdir` per level (Node's recursive mkdir spins forever on file systems
 * such as /proc that answer ENOENT for a parent that exists). Throws the first errno error; a path whose
 * component is a file fails with ENOTDIR.
 */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!isDirectory(at)) {
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(path)) continue;
      throw err;
    }
  }
}
