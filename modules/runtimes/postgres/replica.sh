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
if [ ! -f "$d/data/PG_VERSION" ]; then
  pg_as env PGPASSFILE="$pass" PGCONNECT_TIMEOUT=10 "$d/bin/pg_basebackup" \
    -h "$TIK_HEAD_IP" -p "$TIK_PARAM_PORT" -U "$TIK_PARAM_REPLICATION_USER" \
    -D "$d/data" -R -X stream -c fast >"$d/logs/basebackup.log" 2>&1 ||
    { cat "$d/logs/basebackup.log"; rm -rf "$d/data"; pg_own "$d/data"
      tik_fail "cannot copy the primary's data from $TIK_HEAD_IP:$TIK_PARAM_PORT"; }
fi
pg_use_conf
pg_as "$d/bin/pg_ctl" -D "$d/data" -l "$d/logs/server.log" -w -t 60 start ||
  { tail -n 20 "$d/logs/server.log"; tik_fail "the replica did not start"; }
