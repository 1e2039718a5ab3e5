# Celery's own client: N sequential add.delay(1, 2).get() round trips over rpc://; prints one ms figure a line.
import sys
import time

from celery_app import add

n = int(sys.argv[1])
add.delay(0, 0).get(timeout=30)  # warm up the connection and the reply queue
for _ in range(n):
    t = time.perf_counter()
    add.delay(1, 2).get(timeout=30)
    print('%f' % ((time.perf_counter() - t) * 1000.0))
