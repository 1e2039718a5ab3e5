#!/bin/sh
### BEGIN INIT INFO
# Provides:          asynx
# Required-Start:    $remote_fs $network $syslog
# Required-Stop:     $remote_fs $network $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: asynx worker nodes ({{NODES}})
# Description:       asynx task queue workers, started and stopped through `asynx multi`.
### END INIT INFO
# Rendered by `asynx init initd`. Install: sudo cp asynx.init.sh /etc/init.d/asynx && sudo update-rc.d asynx defaults
# Usage: asynx.init.sh {start|stop|restart|reload|force-reload|graceful|kill|status|dryrun}
# Settings (these variables, and ASYNX_* such as ASYNX_BROKER_URL) can be set in /etc/default/asynx:
# `service` and boot start this script with an empty environment, so that file is where the broker URL goes.

ASYNX_NODES="{{NODES}}"
ASYNX_OPTS="-A {{APP}} -c {{CONCURRENCY}} -l {{LOGLEVEL}}"
ASYNX_DIR="{{WORKDIR}}"
ASYNX_USER="{{USER}}"
ASYNX_PIDFILE="{{WORKDIR}}/.asynx/run/%n.pid"
ASYNX_LOGFILE="{{WORKDIR}}/.asynx/log/%n%I.log"
ASYNX_STOP_TIMEOUT="{{TIMEOUT}}"
{{ASYNX_BIN_NOTE}}
ASYNX_BIN="{{NODE}} {{ASYNX_EXEC}}"
{{SH_BROKER}}

# set -a: every variable the defaults file sets (ASYNX_BROKER_URL, ...) reaches the workers.
if [ -r /etc/default/asynx ]; then
    set -a
    . /etc/default/asynx
    set +a
fi

multi() {
    cmd="cd \"$ASYNX_DIR\" && $ASYNX_BIN multi $*"
    if [ "$(id -u)" = "0" ] && [ "$ASYNX_USER" != "root" ]; then
        su -s /bin/sh "$ASYNX_USER" -c "$cmd"
    else
        sh -c "$cmd"
    fi
}

case "$1" in
    start)
        multi start $ASYNX_NODES $ASYNX_OPTS "--pidfile=$ASYNX_PIDFILE" "--logfile=$ASYNX_LOGFILE"
        ;;
    stop)
        multi stopwait $ASYNX_NODES "--pidfile=$ASYNX_PIDFILE" "--kill-after=$ASYNX_STOP_TIMEOUT" "--timeout=$((ASYNX_STOP_TIMEOUT + 15))"
        ;;
    restart)
        multi restart $ASYNX_NODES $ASYNX_OPTS "--pidfile=$ASYNX_PIDFILE" "--logfile=$ASYNX_LOGFILE" "--timeout=$ASYNX_STOP_TIMEOUT"
        ;;
    reload|force-reload|graceful)
        # HUP: each node lets its running tasks finish, then restarts its pool in place with the app re-read.
        multi stop $ASYNX_NODES -HUP "--pidfile=$ASYNX_PIDFILE"
        ;;
    kill)
        multi kill $ASYNX_NODES "--pidfile=$ASYNX_PIDFILE"
        ;;
    status)
        # LSB exit codes: 0 every node up (or restarting its pool after a reload), 1 some node up and some down
        # (one died), 3 not running.
        out=$(multi status $ASYNX_NODES "--pidfile=$ASYNX_PIDFILE")
        rc=$?
        [ -n "$out" ] && printf '%s\n' "$out"
        [ "$rc" = "0" ] && exit 0
        if printf '%s\n' "$out" | grep -Eq '[[:space:]](up|restarting)([[:space:]]|$)'; then
            exit 1
        fi
        exit 3
        ;;
    dryrun)
        multi show $ASYNX_NODES $ASYNX_OPTS "--pidfile=$ASYNX_PIDFILE" "--logfile=$ASYNX_LOGFILE"
        ;;
    *)
        echo "Usage: $0 {start|stop|restart|reload|force-reload|graceful|kill|status|dryrun}" >&2
        exit 64
        ;;
esac
