# The server's binaries under $TIK_HOME/postgres/bin: built from upstream's source,
# or the distribution's packages.
set -e
d="$TIK_HOME/postgres"
mkdir -p "$d"
case "$TIK_PARAM_INSTALL_METHOD" in
  package)
    major=${TIK_PARAM_VERSION%%.*}
    bin=""
    if [ -z "$major" ]; then
      # No version asked for: the distribution's own, whichever that is (15 on
      # Debian 12), installed already or through its postgresql package.
      newest() { for b in /usr/lib/postgresql/*/bin /usr/pgsql-*/bin; do [ -x "$b/postgres" ] && bin=$b; done; :; }
      newest
      if [ -z "$bin" ]; then
        command -v apt-get >/dev/null 2>&1 ||
          tik_fail "PostgreSQL is not installed and this node has no apt-get: install its server package, or use install_method = \"source\""
        tik_apt_install postgresql
        newest
      fi
      [ -n "$bin" ] || tik_fail "the postgresql package installed no server under /usr/lib/postgresql: set version to the major version to install"
    fi
    for b in "/usr/lib/postgresql/$major/bin" "/usr/pgsql-$major/bin"; do
      [ -n "$major" ] && [ -x "$b/postgres" ] && bin=$b && break
    done
    if [ -z "$bin" ]; then
      command -v apt-get >/dev/null 2>&1 ||
        tik_fail "PostgreSQL $major is not installed and this node has no apt-get: install its server package (postgresql$major-server from PGDG), or use install_method = \"source\""
      # PGDG's apt.postgresql.org has every version, where the distribution lacks it.
      tik_apt_install "postgresql-$major"
      bin="/usr/lib/postgresql/$major/bin"
    fi
    ln -sfn "$bin" "$d/bin"
    ;;
  source)
    v=${TIK_PARAM_VERSION:-17.6}
    url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/source/v$v/postgresql-$v.tar.gz"}
    prefix="$d/postgresql-$v"
    if [ ! -x "$prefix/bin/postgres" ]; then
      command -v make >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 ||
        tik_fail "building PostgreSQL needs a C compiler and make: apt-get install build-essential (or use install_method = \"package\")"
      tik_fetch "$url" "${TIK_PARAM_CHECKSUM:-sums:$url.sha256}" "$d/downloads/$(basename "$url")"
      tik_unpack "$d/downloads/$(basename "$url")" "$d/src-$v"
      # Only what the node has: readline, zlib and ICU are optional.
      set --
      [ -f /usr/include/readline/readline.h ] || set -- "$@" --without-readline
      [ -f /usr/include/zlib.h ] || set -- "$@" --without-zlib
      pkg-config --exists icu-uc 2>/dev/null || set -- "$@" --without-icu
      (cd "$d/src-$v" && ./configure --prefix="$prefix" "$@" >"$d/build.log" 2>&1 &&
        make -j "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" >>"$d/build.log" 2>&1 &&
        make install >>"$d/build.log" 2>&1) ||
        { tail -n 30 "$d/build.log"; tik_fail "building PostgreSQL $v failed (all of it in $d/build.log)"; }
      rm -rf "$d/src-$v"
    fi
    ln -sfn "$prefix/bin" "$d/bin"
    ;;
  *) tik_fail "install_method must be \"source\" or \"package\", got \"$TIK_PARAM_INSTALL_METHOD\"" ;;
esac
"$d/bin/postgres" --version
# psql and the server's tools on the PATH of `tik exec` and `tik ssh`.
mkdir -p "$TIK_HOME/profile.d"
printf '%s\n' 'export PATH="$TIK_HOME/postgres/bin:$PATH"' >"$TIK_HOME/profile.d/postgres.sh"
