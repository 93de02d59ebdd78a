# The supervisor runs (it starts the controller again whenever it ends).
pid=$(cat "$TIK_HOME/controller/supervisor.pid" 2>/dev/null) || exit 1
kill -0 "$pid" 2>/dev/null
