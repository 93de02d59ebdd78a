# The server, then the cluster's role and the replicas' (their password set each
# start) and database.
set -e
d="$TIK_HOME/postgres"
pg_as "$d/bin/pg_ctl" -D "$d/data" -l "$d/logs/server.log" -w -t 60 start ||
  { tail -n 20 "$d/logs/server.log"; tik_fail "the server did not start"; }
# The password goes in a file only this user reads, never on a command line.
sql="$d/run/setup.sql"
umask 077
pw=$(printf '%s' "$TIK_PARAM_PASSWORD" | sed "s/'/''/g")
cat >"$sql" <<SQL
SELECT format('CREATE ROLE %I LOGIN', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', '$pw') \gexec
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'repl')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'repl') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN REPLICATION PASSWORD %L', :'repl', '$pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
[ "$(id -u)" != 0 ] || chown postgres "$sql"
status=0
pg_as "$d/bin/psql" -X -q -h "$d/run" -p "$TIK_PARAM_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -v user="$TIK_PARAM_USER" -v repl="$TIK_PARAM_REPLICATION_USER" -v db="$TIK_PARAM_DATABASE" \
  -f "$sql" >/dev/null || status=$?
rm -f "$sql"
[ $status -eq 0 ] || tik_fail "cannot create the role $TIK_PARAM_USER and database $TIK_PARAM_DATABASE"
