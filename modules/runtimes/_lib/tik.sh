# Shared by the shipped runtimes: a script that wants these functions starts with
# file("../_lib/tik.sh"). Downloading and verifying upstream archives, running
# daemons, checking that they answer. POSIX sh; needs curl, wget or python3.

tik_fail() {
  echo "$*" >&2
  exit 1
}

# tik_get URL FILE: download URL to FILE.
tik_get() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -t 3 -T 20 -O "$2" "$1"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, urllib.request, shutil
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$1" "$2"
  else
    tik_fail "cannot download $1: the node has neither curl, wget nor python3"
  fi
}

# tik_reachable URL: whether URL's server answers at all, with any status: a
# download that failed at a server that answered is missing; one that found no
# server needs another mirror.
tik_reachable() {
  if command -v curl >/dev/null 2>&1; then
    curl -sS -o /dev/null --connect-timeout 10 --max-time 30 "$1" 2>/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)' "$1"
  fi
}

# tik_unreachable_fail URL: fails naming URL's server and the params that pick
# another, when it does not answer at all; returns otherwise.
tik_unreachable_fail() {
  tik_reachable "$1" && return 0
  host=${1#*://}
  host=${host%%/*}
  tik_fail "cannot reach $host to download $1: set the runtime's mirror param (or its url) to a copy this node can reach"
}

# tik_digest ALGO FILE: the hex digest of FILE (sha256 or sha512).
tik_digest() {
  if command -v "${1}sum" >/dev/null 2>&1; then
    "${1}sum" "$2" | cut -d' ' -f1
  else
    python3 -c 'import hashlib, sys
h = hashlib.new(sys.argv[1])
with open(sys.argv[2], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1" "$2"
  fi
}

# tik_checksum_of TEXT: the hex digest in a published checksum file, whatever its
# layout: "HEX  name" (sha512sum's, or the digest alone), "SHA512 (name) = HEX"
# (BSD's, as Hadoop publishes), or "name: HEX HEX ..." over lines (gpg's, as Kafka
# publishes); upper or lower case.
tik_checksum_of() {
  printf '%s\n' "$1" | tr -d '\r' | awk '
    NR == 1 && /^SHA[0-9]+ \(.*\) *= *[0-9A-Fa-f]/ { sub(/^[^=]*= */, ""); hex = $1; done = 1 }
    NR == 1 && !done && $0 !~ /: / { hex = $1; done = 1 }
    !done { line = $0; if (NR == 1) sub(/^[^:]*: /, "", line); gsub(/[ \t]/, "", line); hex = hex line }
    END { print tolower(hex) }'
}

# tik_fetch URL CHECKSUM FILE: FILE holds URL's archive, verified. CHECKSUM is
# "sha512:HEX", "sha256:HEX" or bare HEX (its length says which); "sums:LIST_URL"
# takes it from a published list ("HEX  name" lines, or the digest alone); empty means the checksum
# upstream publishes beside the archive (URL.sha512). A file already there
# with the right checksum is not downloaded again.
tik_fetch() {
  url=$1
  want=$2
  file=$3
  mkdir -p "$(dirname "$file")" || exit 1
  case "$want" in
    "")
      tik_get "$url.sha512" "$file.sha512" || {
        tik_unreachable_fail "$url"
        tik_fail "no checksum given and none published at $url.sha512: set the runtime's checksum param"
      }
      want=$(tik_checksum_of "$(cat "$file.sha512")")
      rm -f "$file.sha512"
      case "$want" in
        *[!0-9a-f]* | "") want="" ;;
      esac
      [ ${#want} -eq 128 ] ||
        tik_fail "cannot read a sha512 digest from $url.sha512: set the runtime's checksum param"
      want="sha512:$want"
      ;;
    sums:*)
      # A published list of "HEX  name" lines (sha256sums.txt): the archive's line;
      # or a file of the bare digest alone (grafana's URL.sha256).
      tik_get "${want#sums:}" "$file.sums" || {
        tik_unreachable_fail "${want#sums:}"
        tik_fail "cannot download the checksums ${want#sums:}"
      }
      want=$(awk -v n="$(basename "$url")" '$2 == n || $2 == "*" n || (NR == 1 && NF == 1) { print $1; exit }' "$file.sums")
      rm -f "$file.sums"
      [ -n "$want" ] || tik_fail "${2#sums:} lists no checksum for $(basename "$url")"
      ;;
  esac
  case "$want" in
    sha256:*) algo=sha256 want=${want#sha256:} ;;
    sha512:*) algo=sha512 want=${want#sha512:} ;;
    *) if [ ${#want} -eq 64 ]; then algo=sha256; else algo=sha512; fi ;;
  esac
  want=$(printf '%s' "$want" | tr 'A-F' 'a-f')
  case ${#want} in
    64 | 128) ;;
    *) tik_fail "the checksum \"$2\" is not a sha256 or sha512 hex digest" ;;
  esac
  if [ -f "$file" ] && [ "$(tik_digest "$algo" "$file")" = "$want" ]; then
    return 0
  fi
  echo "downloading $url"
  tik_get "$url" "$file.part" || {
    rm -f "$file.part"
    tik_unreachable_fail "$url"
    tik_fail "cannot download $url (set the runtime's mirror or url param to a reachable copy)"
  }
  got=$(tik_digest "$algo" "$file.part")
  if [ "$got" != "$want" ]; then
    rm -f "$file.part"
    tik_fail "checksum mismatch for $url: expected $algo $want, got $got; the download was removed"
  fi
  mv "$file.part" "$file"
}

# tik_unpack ARCHIVE DIR: DIR holds the archive's top directory's content, unpacked
# afresh (a .tar.gz, .tgz or .tar.xz; a .zip with python3).
tik_unpack() {
  rm -rf "$2.part" && mkdir -p "$2.part" || exit 1
  case "$1" in
    *.zip) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2.part" ;;
    *) tar -xf "$1" -C "$2.part" ;;
  esac || { rm -rf "$2.part"; tik_fail "cannot unpack $1"; }
  # One top directory (spark-3.5.7-bin-hadoop3/): its content is what we keep.
  set -- "$1" "$2" "$2.part"/*
  if [ $# -eq 3 ] && [ -d "$3" ]; then
    rm -rf "$2" && mv "$3" "$2" && rm -rf "$2.part"
  else
    rm -rf "$2" && mv "$2.part" "$2"
  fi
}

# tik_stop_pid FILE: stop the process whose pid FILE holds, and wait (10 s, then KILL).
tik_stop_pid() {
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# tik_install_archive NAME URL CHECKSUM: $TIK_HOME/NAME/current is the unpacked
# archive (downloaded and verified once per version, under NAME/downloads).
tik_install_archive() {
  base="$TIK_HOME/$1"
  name=$(basename "$2")
  name=${name%.tgz}
  name=${name%.tar.gz}
  name=${name%.tar.xz}
  name=${name%.zip}
  tik_fetch "$2" "$3" "$base/downloads/$(basename "$2")"
  tik_unpack "$base/downloads/$(basename "$2")" "$base/$name"
  ln -sfn "$base/$name" "$base/current"
  mkdir -p "$base/conf" "$base/logs" "$base/data"
}

# tik_apt ARGS...: apt-get ARGS, as root (through sudo -n when not root), without
# questions. Nodes that share a machine (the local provider's) take turns, and a
# fresh machine's own upgrades are waited for rather than failed on (dpkg's lock).
tik_apt() {
  run="env"
  ! command -v flock >/dev/null 2>&1 || run="flock -w 900 /var/lock/tik-apt.lock env"
  [ "$(id -u)" = 0 ] || run="sudo -n $run"
  # shellcheck disable=SC2086
  $run DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

# tik_apt_install PACKAGE...: the distribution's packages, installed with apt-get
# unless dpkg already has them all. Where the first try fails (a fresh image's
# package lists are empty or old), the lists are read again and it tries once more.
tik_apt_install() {
  missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null 2>&1 ||
    tik_fail "$TIK_RUNTIME needs the packages$missing and this node has no apt-get: install them, or use another install_method"
  # shellcheck disable=SC2086
  tik_apt install -y --no-install-recommends $missing && return 0
  echo "installing$missing failed; reading the package lists again (apt-get update)"
  tik_apt update ||
    tik_fail "apt-get update failed (as root, or a user with passwordless sudo; can the node reach its apt sources?)"
  # shellcheck disable=SC2086
  tik_apt install -y --no-install-recommends $missing ||
    tik_fail "cannot install$missing with apt-get (as root, or a user with passwordless sudo; are they in the node's apt sources?)"
}

# tik_need_java: Java on the node, and JAVA_HOME for scripts that want it.
tik_need_java() {
  if [ -z "${JAVA_HOME:-}" ]; then
    java=$(command -v java) || tik_fail "$TIK_RUNTIME needs Java 17 on the node: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java")")")
  fi
  export JAVA_HOME
}

# tik_daemon PIDFILE LOG COMMAND...: runs COMMAND in the background, its output in
# LOG and its pid in PIDFILE.
tik_daemon() {
  pidfile=$1
  log=$2
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
  # nohup where the node (or its container's image) has it: a step's sh -c sends
  # no hangup when it ends, so the daemon outlives the step either way.
  if command -v nohup >/dev/null 2>&1; then
    nohup "$@" </dev/null >"$log" 2>&1 &
  else
    "$@" </dev/null >"$log" 2>&1 &
  fi
  echo $! >"$pidfile"
}

# tik_alive PIDFILE: the process in PIDFILE runs.
tik_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# tik_http_ok URL: URL answers 2xx.
tik_http_ok() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1"
}

# tik_port_open HOST PORT: something accepts connections there.
tik_port_open() {
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()' "$1" "$2"
}

# tik_q VALUE: VALUE single-quoted for a shell-sourced config file.
tik_q() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# tik_pip_install DIR PYTHON INDEX PIP_ARGS...: a venv in DIR/venv made with PYTHON,
# and `pip install PIP_ARGS` into it (from INDEX when it is not empty).
tik_pip_install() {
  dir=$1
  py=$2
  index=$3
  shift 3
  command -v "$py" >/dev/null 2>&1 ||
    tik_fail "$TIK_RUNTIME needs $py on the node (apt-get install python3 python3-venv)"
  [ -x "$dir/venv/bin/python" ] || "$py" -m venv "$dir/venv" ||
    tik_fail "cannot create a venv with $py (apt-get install python3-venv)"
  [ -z "$index" ] || set -- --index-url "$index" "$@"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}
