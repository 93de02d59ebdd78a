# A supervisor in a session of its own runs the controller with its environment,
# and runs it again if it ends; stop ends the session.
set -eu
umask 077
d="$TIK_HOME/controller"
printf '%s\n' "$TIK_PARAM_ENV" >"$d/env.new"
mv -f "$d/env.new" "$d/env"
on="on the head ($TIK_NODE_NAME) of cluster $TIK_CLUSTER"
setsid sh -c '
  d=$1; on=$2; shift 2
  set -a; . "$d/env"; set +a
  while :; do
    "$d/bin/tik" -C "$d/project" controller "$@" --running-on "$on" >>"$d/controller.log" 2>&1 </dev/null
    sleep 5
  done' sh "$d" "$on" "$TIK_PARAM_CLUSTER" --interval "${TIK_PARAM_INTERVAL}s" </dev/null >/dev/null 2>&1 &
echo $! >"$d/supervisor.pid"
