# The node's settings and who may connect, written beside its data directory and
# put into it where it exists. The primary's data directory is made here, once: a
# copy of the most advanced replica's where replicas hold one (the head was
# replaced, and so keeps its data), else anew (initdb). A replica's is copied
# from the primary when it first starts.
set -e
d="$TIK_HOME/postgres"
pg_own "$d/data" "$d/run" "$d/logs" "$d/conf"
# The replication role's password, where only the server's user reads it: replicas
# log in to the primary with it, and a primary without data to its replicas.
(
  umask 077
  esc() { printf '%s' "$1" | sed 's/[\\:]/\\&/g'; }
  printf '*:%s:*:%s:%s\n' "$TIK_PARAM_PORT" "$(esc "$TIK_PARAM_REPLICATION_USER")" "$(esc "$TIK_PARAM_PASSWORD")" >"$d/conf/pgpass"
)
[ "$(id -u)" != 0 ] || chown postgres "$d/conf/pgpass"
if [ "$TIK_PG_ROLE" = primary ] && [ ! -f "$d/data/PG_VERSION" ]; then
  from=""
  best=-1
  for ip in ${TIK_PG_REPLICAS:-}; do
    lsn=$(pg_identify "$ip" | cut -d'|' -f3)
    n=$(pg_lsn_number "$lsn")
    [ "$n" -gt "$best" ] || continue
    best=$n
    from=$ip
  done
  if [ -n "$from" ]; then
    echo "the head has no data and the replica at $from has the most: copying its data to be the primary's"
    pg_as env PGPASSFILE="$d/conf/pgpass" PGCONNECT_TIMEOUT=10 "$d/bin/pg_basebackup" \
      -h "$from" -p "$TIK_PARAM_PORT" -U "$TIK_PARAM_REPLICATION_USER" \
      -D "$d/data" -X stream -c fast >"$d/logs/basebackup.log" 2>&1 || {
      cat "$d/logs/basebackup.log"
      rm -rf "$d/data"
      pg_own "$d/data"
      tik_fail "cannot copy the replica's data from $from:$TIK_PARAM_PORT; apply again to retry (the replicas keep theirs)"
    }
    # Without standby.signal the copy starts as a primary, at the replica's place.
    rm -f "$d/data/standby.signal" "$d/data/recovery.signal"
  else
    # The superuser connects only through the socket in $d/run, which only the
    # server's user can reach; everyone else with a password.
    pg_as "$d/bin/initdb" -D "$d/data" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >"$d/logs/initdb.log" 2>&1 ||
      { cat "$d/logs/initdb.log"; tik_fail "initdb failed"; }
  fi
fi
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
# ci VALUE: VALUE quoted for a libpq connection string.
ci() { printf "'%s'" "$(printf '%s' "$1" | sed "s/[\\\\']/\\\\&/g")"; }
conf="$d/conf/tik.conf"
{
  echo "# Written by tik's configure step: changes here are overwritten."
  echo "listen_addresses = $(q "$TIK_NODE_IP")"
  echo "port = $TIK_PARAM_PORT"
  echo "unix_socket_directories = $(q "$d/run")"
  echo "password_encryption = 'scram-sha-256'"
  if [ "$TIK_PG_ROLE" = replica ]; then
    # Where a standby streams from: the head's address as it is now.
    echo "primary_conninfo = $(q "host=$(ci "$TIK_HEAD_IP") port=$TIK_PARAM_PORT user=$(ci "$TIK_PARAM_REPLICATION_USER") passfile=$(ci "$d/conf/pgpass") application_name=$(ci "$TIK_NODE_NAME")")"
  fi
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
