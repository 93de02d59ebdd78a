# Ends the supervisor's session: the controller marks its status stopped on SIGTERM.
# (kill -SIG -PGID, without --: dash's kill takes no --.)
d="$TIK_HOME/controller"
pid=$(cat "$d/supervisor.pid" 2>/dev/null) || exit 0
case "$pid" in '' | *[!0-9]*) exit 0 ;; esac
kill -TERM "-$pid" 2>/dev/null || true
i=0
while kill -0 "-$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
kill -KILL "-$pid" 2>/dev/null || true
rm -f "$d/supervisor.pid"
