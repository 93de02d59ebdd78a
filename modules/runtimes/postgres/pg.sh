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
