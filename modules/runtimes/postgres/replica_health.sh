# A replica is healthy when it answers and is still a standby (not promoted, so
# it follows the primary).
d="$TIK_HOME/postgres"
"$d/bin/pg_isready" -q -h "$TIK_NODE_IP" -p "$TIK_PARAM_PORT" || exit 1
standby=$(pg_as "$d/bin/psql" -X -Atq -h "$d/run" -p "$TIK_PARAM_PORT" -U postgres -d postgres -c 'select pg_is_in_recovery()') || exit 1
[ "$standby" = t ] || { echo "the replica is not in recovery: it no longer follows the primary" >&2; exit 1; }
