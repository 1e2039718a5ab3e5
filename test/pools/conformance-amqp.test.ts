// The pool conformance suite on a private RabbitMQ node: every pool kind (-P prefork | threads | async | solo).
// Fails loudly when CI is set and RabbitMQ cannot run here (rabbitSkip).

import { poolConformance } from '../helpers/pool-conformance.js';

poolConformance('amqp');
