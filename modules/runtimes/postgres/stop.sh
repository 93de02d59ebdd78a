# Stops the node's server, if it runs.
d="$TIK_HOME/postgres"
pg_as "$d/bin/pg_ctl" -D "$d/data" status >/dev/null 2>&1 || exit 0
pg_as "$d/bin/pg_ctl" -D "$d/data" -m fast -w stop
