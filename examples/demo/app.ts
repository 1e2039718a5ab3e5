// The demo's app module, loaded by the demo's worker with -A (broker from ASYNX_BROKER_URL).

import { Asynx } from 'asynx';

/** The demo app: only the built-in HTTP dispatch task is used. */
export const app = new Asynx({ configFile: false });
export default app;
