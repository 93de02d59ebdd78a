# A replica: the first start copies the primary's data (pg_basebackup); each
# start then runs it as a standby, with this node's own settings.
set -e
d="$TIK_HOME/postgres"
pass="$d/conf/pgpass"
# Data of another database than the primary's is never streamed into, nor thrown
# away: the primary was made anew while this copy was out of its reach.
if [ -f "$d/data/PG_VERSION" ]; then
  mine=$(pg_as env LC_ALL=C "$d/bin/pg_controldata" "$d/data" | sed -n 's/^Database system identifier: *//p')
  theirs=$(pg_identify "$TIK_HEAD_IP" | cut -d'|' -f1)
  [ -z "$theirs" ] || [ -z "$mine" ] || [ "$mine" = "$theirs" ] ||
    tik_fail "the primary at $TIK_HEAD_IP:$TIK_PARAM_PORT is another database (system identifier $theirs) than this replica's copy ($mine): the head's data was made anew while no replica could be reached. This replica's data is kept in $d/data; to follow the new primary, move it away and apply again"
fi
# Copies taken at once by several replicas can fail: one's checkpoint may end
# another's just-made WAL slot ("terminating process ... to release replication
# slot"), so a failed copy is tried again, from scratch, up to three times.
tries=0
while [ ! -f "$d/data/PG_VERSION" ]; do
  tries=$((tries + 1))
  pg_as env PGPASSFILE="$pass" PGCONNECT_TIMEOUT=10 "$d/bin/pg_basebackup" \
    -h "$TIK_HEAD_IP" -p "$TIK_PARAM_PORT" -U "$TIK_PARAM_REPLICATION_USER" \
    -D "$d/data" -X stream -c fast >"$d/logs/basebackup.log" 2>&1 && break
  cat "$d/logs/basebackup.log"
  rm -rf "$d/data"
  pg_own "$d/data"
  [ $tries -lt 3 ] || tik_fail "cannot copy the primary's data from $TIK_HEAD_IP:$TIK_PARAM_PORT"
  echo "copying the primary's data failed (try $tries of 3); trying again"
  sleep $tries
done
# A standby, streaming from where configure's primary_conninfo says.
pg_as touch "$d/data/standby.signal"
pg_use_conf
pg_as "$d/bin/pg_ctl" -D "$d/data" -l "$d/logs/server.log" -w -t 60 start ||
  { tail -n 20 "$d/logs/server.log"; tik_fail "the replica did not start"; }
