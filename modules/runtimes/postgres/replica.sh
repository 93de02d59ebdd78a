# A replica: the first start copies the primary's data (pg_basebackup), which
# also makes it a standby that streams from the primary; each start then runs it
# with this node's own settings.
set -e
d="$TIK_HOME/postgres"
# The replication role's password, where only the server's user reads it; the
# standby's connection to the primary (primary_conninfo, which -R writes) names
# this file, kept current each start.
pass="$d/conf/pgpass"
umask 077
esc() { printf '%s' "$1" | sed 's/[\\:]/\\&/g'; }
printf '%s:%s:*:%s:%s\n' "$(esc "$TIK_HEAD_IP")" "$TIK_PARAM_PORT" "$(esc "$TIK_PARAM_REPLICATION_USER")" "$(esc "$TIK_PARAM_PASSWORD")" >"$pass"
[ "$(id -u)" != 0 ] || chown postgres "$pass"
# Copies taken at once by several replicas can fail: one's checkpoint may end
# another's just-made WAL slot ("terminating process ... to release replication
# slot"), so a failed copy is tried again, from scratch, up to three times.
tries=0
while [ ! -f "$d/data/PG_VERSION" ]; do
  tries=$((tries + 1))
  pg_as env PGPASSFILE="$pass" PGCONNECT_TIMEOUT=10 "$d/bin/pg_basebackup" \
    -h "$TIK_HEAD_IP" -p "$TIK_PARAM_PORT" -U "$TIK_PARAM_REPLICATION_USER" \
    -D "$d/data" -R -X stream -c fast >"$d/logs/basebackup.log" 2>&1 && break
  cat "$d/logs/basebackup.log"
  rm -rf "$d/data"
  pg_own "$d/data"
  [ $tries -lt 3 ] || tik_fail "cannot copy the primary's data from $TIK_HEAD_IP:$TIK_PARAM_PORT"
  echo "copying the primary's data failed (try $tries of 3); trying again"
  sleep $tries
done
pg_use_conf
pg_as "$d/bin/pg_ctl" -D "$d/data" -l "$d/logs/server.log" -w -t 60 start ||
  { tail -n 20 "$d/logs/server.log"; tik_fail "the replica did not start"; }
