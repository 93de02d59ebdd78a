# The node's settings and who may connect, written beside its data directory and
# put into it where it exists. The primary's data directory is made here, once
# (initdb); a replica's is copied from the primary when it first starts.
set -e
d="$TIK_HOME/postgres"
pg_own "$d/data" "$d/run" "$d/logs" "$d/conf"
if [ "$TIK_PG_ROLE" = primary ] && [ ! -f "$d/data/PG_VERSION" ]; then
  # The superuser connects only through the socket in $d/run, which only the
  # server's user can reach; everyone else with a password.
  pg_as "$d/bin/initdb" -D "$d/data" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >"$d/logs/initdb.log" 2>&1 ||
    { cat "$d/logs/initdb.log"; tik_fail "initdb failed"; }
fi
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
conf="$d/conf/tik.conf"
{
  echo "# Written by tik's configure step: changes here are overwritten."
  echo "listen_addresses = $(q "$TIK_NODE_IP")"
  echo "port = $TIK_PARAM_PORT"
  echo "unix_socket_directories = $(q "$d/run")"
  echo "password_encryption = 'scram-sha-256'"
  # settings: a JSON object, {"max_connections": 50, "shared_buffers": "1GB"}.
  [ "$TIK_PARAM_SETTINGS" = "{}" ] || printf '%s' "$TIK_PARAM_SETTINGS" | python3 -c '
import json, sys
q = chr(39)
for k, v in json.load(sys.stdin).items():
    if not k.replace("_", "").replace(".", "").isalnum():
        sys.exit("settings: %r is not a PostgreSQL setting name" % k)
    v = str(v).lower() if isinstance(v, bool) else str(v)
    print("%s = %s%s%s" % (k, q, v.replace(q, q + q), q))'
} >"$conf.part"
mv "$conf.part" "$conf"
{
  echo "# Written by tik's configure step."
  echo "local all postgres trust"
  echo "local all all scram-sha-256"
  echo "host all all $TIK_PARAM_ALLOWED scram-sha-256"
  # Replicas stream the primary's changes as the replication role.
  echo "host replication $TIK_PARAM_REPLICATION_USER $TIK_PARAM_ALLOWED scram-sha-256"
} >"$d/conf/pg_hba.conf"
[ "$(id -u)" != 0 ] || chown postgres "$conf" "$d/conf/pg_hba.conf"
[ ! -f "$d/data/PG_VERSION" ] || pg_use_conf
