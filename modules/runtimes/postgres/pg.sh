# PostgreSQL refuses to run as root: where the node logs in as root, its server
# runs as the system user postgres, which must be able to reach $TIK_HOME.
pg_as() {
  if [ "$(id -u)" = 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su -s /bin/sh postgres -c '"$0" "$@"' "$@"
    fi
  else
    "$@"
  fi
}

# pg_own DIR...: the directories belong to whoever runs the server.
pg_own() {
  mkdir -p "$@" || exit 1
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 ||
      useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres ||
      tik_fail "cannot create the system user postgres to run the server as"
    chown postgres "$@" || exit 1
    pg_as test -x "$1" ||
      tik_fail "the node logs in as root, so PostgreSQL runs as user postgres, who cannot reach $1: make its parent directories searchable (chmod o+x), or log in as another user"
  fi
  chmod 700 "$@"
}

# pg_use_conf: the settings and pg_hba.conf that configure wrote, into the data
# directory (a replica's came from the primary, with the primary's).
pg_use_conf() {
  cp "$d/conf/tik.conf" "$d/conf/pg_hba.conf" "$d/data/" || exit 1
  grep -q "^include_if_exists = 'tik.conf'" "$d/data/postgresql.conf" ||
    echo "include_if_exists = 'tik.conf'" >>"$d/data/postgresql.conf"
  [ "$(id -u)" != 0 ] || chown postgres "$d/data/tik.conf" "$d/data/pg_hba.conf"
}

# pg_identify HOST: "systemid|timeline|lsn" of the server at HOST (its database's
# identity and how far its WAL goes), asked as the replication role; nothing when
# it cannot be reached.
pg_identify() {
  pg_as env PGPASSFILE="$d/conf/pgpass" PGCONNECT_TIMEOUT=5 PGHOST="$1" PGPORT="$TIK_PARAM_PORT" \
    PGUSER="$TIK_PARAM_REPLICATION_USER" "$d/bin/psql" -X -Atq -d "replication=true" \
    -c IDENTIFY_SYSTEM 2>/dev/null
}

# pg_lsn_number LSN: a WAL position (hex "16/B374D848") as a number, to compare.
pg_lsn_number() {
  case "$1" in
    */*) ;;
    *) echo -1 && return ;;
  esac
  hi=${1%/*}
  lo=${1#*/}
  case "$hi$lo" in
    *[!0-9A-Fa-f]* | "") echo -1 ;;
    *) echo $((0x$hi * 4294967296 + 0x$lo)) ;;
  esac
}
