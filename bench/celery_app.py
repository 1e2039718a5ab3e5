# Benchmark tasks for Celery workers (`npm run bench`): the same names and behaviour as bench/app.mjs.
import os
import time

from celery import Celery

app = Celery('bench', broker=os.environ['BENCH_BROKER'], backend=os.environ.get('BENCH_BACKEND') or None)
app.conf.update(
    task_serializer='json',
    accept_content=['json'],
    result_serializer='json',
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
# BENCH_CONFIRM=1: the client waits for RabbitMQ's publisher confirm of each task message, as asynx's does
# (kombu's py-amqp transport option; off by default in Celery).
if os.environ.get('BENCH_CONFIRM') == '1':
    app.conf.broker_transport_options = {'confirm_publish': True}


def now_ms():
    return time.time() * 1000.0


@app.task(name='bench.noop', ignore_result=True)
def noop():
    return None


@app.task(name='bench.mark', ignore_result=True)
def mark(path):
    with open(path, 'w') as f:
        f.write(str(now_ms()))


@app.task(name='bench.sleep', ignore_result=True)
def sleep(ms):
    time.sleep(ms / 1000.0)


@app.task(name='bench.stamp', ignore_result=True)
def stamp(path, sent_at):
    with open(path, 'a') as f:
        f.write('%f\n' % (now_ms() - sent_at))


@app.task(name='bench.add', ignore_result=False)
def add(a, b):
    return a + b
