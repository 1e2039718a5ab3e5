# Polls `control.ping` until every named Celery node answers; prints the ms it took from argv[1] (epoch ms).
import sys
import time

from celery_app import app

start_ms = float(sys.argv[1])
want = set(sys.argv[2:])
deadline = time.time() + 120
while time.time() < deadline:
    got = set()
    for reply in app.control.ping(timeout=0.2):
        got.update(reply.keys())
    if want <= got:
        print('%f' % (time.time() * 1000.0 - start_ms))
        sys.exit(0)
sys.exit(1)
