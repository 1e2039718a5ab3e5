// The pool conformance suite on the SQLite broker: every pool kind (-P prefork | threads | async | solo).

import { poolConformance } from '../helpers/pool-conformance.js';

poolConformance('sqlite');
