#!/bin/sh
# asynx worker nodes as a POSIX init script, rendered by `asynx init initd`.
# Usage: asynx.init.sh {start|stop|restart|graceful|kill|status|dryrun}
# Settings can be overridden in /etc/default/asynx.

ASYNX_NODES="{{NODES}}"
ASYNX_OPTS="-A {{APP}} -c {{CONCURRENCY}} -l {{LOGLEVEL}}"
ASYNX_DIR="{{WORKDIR}}"
ASYNX_USER="{{USER}}"
ASYNX_PIDFILE="{{WORKDIR}}/.asynx/run/%n.pid"
ASYNX_LOGFILE="{{WORKDIR}}/.asynx/log/%n%I.log"
ASYNX_STOP_TIMEOUT="{{TIMEOUT}}"
ASYNX_BIN="{{NODE}} {{ASYNX_BIN}}"

[ -r /etc/default/asynx ] && . /etc/default/asynx

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
    graceful)
        multi stop $ASYNX_NODES -HUP "--pidfile=$ASYNX_PIDFILE"
        ;;
    kill)
        multi kill $ASYNX_NODES "--pidfile=$ASYNX_PIDFILE"
        ;;
    status)
        multi status $ASYNX_NODES "--pidfile=$ASYNX_PIDFILE"
        ;;
    dryrun)
        multi show $ASYNX_NODES $ASYNX_OPTS "--pidfile=$ASYNX_PIDFILE" "--logfile=$ASYNX_LOGFILE"
        ;;
    *)
        echo "Usage: $0 {start|stop|restart|graceful|kill|status|dryrun}" >&2
        exit 64
        ;;
esac
