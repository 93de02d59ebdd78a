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
