// asynx configuration, rendered by `asynx init config`. Read by `asynx worker` (and apps created without
// `configFile: false`) from the working directory. Precedence: app options < this file < ASYNX_* env < CLI flags.

/** @type {import('asynx').AsynxOptions} */
export default {
  // Broker: embedded SQLite (a file in the project) or RabbitMQ: 'amqp://user:pass@host:5672/vhost'.
  brokerUrl: '{{BROKER}}',
  // Results: by default next to a SQLite broker, or 'rpc://' on RabbitMQ; 'none' to keep no results.
  // resultBackend: 'sqlite://./.asynx/asynx.db',
  // Queue for tasks that name none (Celery's default, so Python clients interoperate).
  defaultQueue: 'celery',
  // How long results are kept, seconds.
  resultExpires: 86400,
  // Prefetch window per pool process.
  prefetchMultiplier: 4,
  // Ack after the task ran (redelivered if the worker dies mid-task) instead of before.
  acksLate: false,
};
