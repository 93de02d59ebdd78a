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

# The cluster's download cache, for a runtime that says download_once = true
# (tik sets TIK_DOWNLOAD_ONCE=1 in its steps' environment). What the head
# downloads (tik_fetch, tik_pip_install) it keeps under $TIK_HOME/cache and
# serves on its private address, port 7799 (CACHE_PORT in tik's runtime.rs),
# which the workspace's firewall opens only within it; the other nodes, whose
# installs run after the head's, take it from there and verify it by the same
# checksum (a pip call's wheels: by the sha256 the head listed for them). Where
# the head has none or cannot be reached, a node downloads from upstream as
# before. The server ends after 10 minutes in which nothing was asked of it.
tik_cache_port=7799

# tik_cache_url: prints the head's cache URL when this node is not the head and
# the cache answers (within 3 s); fails otherwise.
tik_cache_url() {
  [ "${TIK_DOWNLOAD_ONCE:-}" = 1 ] && [ "${TIK_ROLE:-}" != head ] && [ -n "${TIK_HEAD_IP:-}" ] || return 1
  case "$TIK_HEAD_IP" in *:*) _tik_host="[$TIK_HEAD_IP]" ;; *) _tik_host=$TIK_HEAD_IP ;; esac
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --connect-timeout 3 --max-time 5 "http://$_tik_host:$tik_cache_port/" 2>/dev/null
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "http://$_tik_host:$tik_cache_port/" 2>/dev/null
  fi || return 1
  echo "http://$_tik_host:$tik_cache_port"
}

# tik_cache_put FILE DIR NAME: on the head, the cache holds FILE as DIR/NAME (a
# link where it can be) and is served.
tik_cache_put() {
  [ "${TIK_DOWNLOAD_ONCE:-}" = 1 ] && [ "${TIK_ROLE:-}" = head ] || return 0
  _tik_d="$TIK_HOME/cache/$2"
  mkdir -p "$_tik_d" && { ln -f "$1" "$_tik_d/$3" 2>/dev/null || cp "$1" "$_tik_d/$3"; } || return 0
  tik_cache_serve
}

# tik_cache_serve: on the head, the cache is served (started if it is not, its
# idle clock set back if it is). Needs python3; without it the nodes download.
tik_cache_serve() {
  [ "${TIK_DOWNLOAD_ONCE:-}" = 1 ] && [ "${TIK_ROLE:-}" = head ] && [ -n "${TIK_NODE_IP:-}" ] || return 0
  command -v python3 >/dev/null 2>&1 || return 0
  mkdir -p "$TIK_HOME/cache" "$TIK_HOME/cache-server" || return 0
  touch "$TIK_HOME/cache-server/fresh"
  tik_alive "$TIK_HOME/cache-server/pid" && return 0
  # Its working directory is the node's: a node that goes takes it along.
  (cd "$TIK_HOME/cache-server" && tik_daemon pid server.log python3 -c '
import http.server, os, sys, threading, time
ip, port, root, fresh = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
last = [time.time()]
class Cache(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def send_head(self):
        last[0] = time.time()
        return super().send_head()
class Server(http.server.ThreadingHTTPServer):
    address_family = __import__("socket").AF_INET6 if ":" in ip else __import__("socket").AF_INET
server = Server((ip, port), Cache)
def idle():
    while True:
        time.sleep(5)
        try:
            last[0] = max(last[0], os.path.getmtime(fresh))
        except OSError:
            pass
        if time.time() - last[0] > 600:
            server.shutdown()
            return
threading.Thread(target=idle, daemon=True).start()
server.serve_forever()
' "$TIK_NODE_IP" "$tik_cache_port" "$TIK_HOME/cache" "$TIK_HOME/cache-server/fresh")
}

# tik_cache_take URL ALGO HEX FILE: FILE is the head's copy of URL's archive,
# verified; fails (leaving nothing) where the head has none.
tik_cache_take() {
  _tik_cache=$(tik_cache_url) || return 1
  tik_get_checked "$_tik_cache/$2-$3/$(basename "$1")" "$2" "$3" "$4" || return 1
  echo "took $(basename "$1") from the head's download cache"
}

# tik_get_checked URL ALGO HEX FILE: FILE is what URL serves, of that digest; fails
# (leaving nothing) where it cannot be had or does not match.
tik_get_checked() {
  tik_get "$1" "$4.part" 2>/dev/null && [ "$(tik_digest "$2" "$4.part")" = "$3" ] || {
    rm -f "$4.part"
    return 1
  }
  mv "$4.part" "$4"
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
    tik_cache_put "$file" "$algo-$want" "$(basename "$url")"
    return 0
  fi
  tik_cache_take "$url" "$algo" "$want" "$file" && return 0
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
  tik_cache_put "$file" "$algo-$want" "$(basename "$url")"
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

# tik_http_ok URL: URL answers 2xx (or, over http, 3xx: a redirect is an answer).
tik_http_ok() {
  case "$1" in
    # A status line of 2xx or 3xx over a socket: a python without its site
    # packages and urllib costs a fraction of the CPU, and health checks run often.
    http://*)
      python3 -S -c 'import socket, sys
rest = sys.argv[1][len("http://"):]
hostport, _, path = rest.partition("/")
host, sep, port = hostport.rpartition(":")
if not sep:
    host, port = hostport, "80"
s = socket.create_connection((host, int(port)), 3)
s.settimeout(3)
s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, hostport)).encode())
head = b""
while b"\r\n" not in head and len(head) < 8192:
    chunk = s.recv(8192)
    if not chunk:
        break
    head += chunk
parts = head.split(b" ", 2)
sys.exit(not (len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1][:1] in (b"2", b"3")))' "$1"
      ;;
    *) python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1" ;;
  esac
}

# tik_port_open HOST PORT: something accepts connections there.
tik_port_open() {
  python3 -S -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()' "$1" "$2"
}

# tik_q VALUE: VALUE single-quoted for a shell-sourced config file.
tik_q() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# tik_pip_install DIR PYTHON INDEX PIP_ARGS...: a venv in DIR/venv made with PYTHON,
# and `pip install PIP_ARGS` into it (from INDEX when it is not empty). Once per
# cluster (download_once): the head builds the wheels (pip wheel: what it downloads is checked
# against the hashes a requirements file gives) into its download cache, listed
# with their sha256 per pip call, and installs from them; the other nodes take
# that call's wheels from the head, check each against the list, and install
# them. Where the head has none (or cannot be reached), from the index as before.
tik_pip_install() {
  dir=$1
  py=$2
  index=$3
  shift 3
  command -v "$py" >/dev/null 2>&1 ||
    tik_fail "$TIK_RUNTIME needs $py on the node (apt-get install python3 python3-venv)"
  [ -x "$dir/venv/bin/python" ] || "$py" -m venv "$dir/venv" ||
    tik_fail "cannot create a venv with $py (apt-get install python3-venv)"
  _tik_pip="$dir/venv/bin/pip"
  _tik_key=$(tik_pip_key "$@")
  if [ "${TIK_DOWNLOAD_ONCE:-}" != 1 ]; then
    :
  elif [ "${TIK_ROLE:-}" = head ]; then
    if tik_pip_build "$_tik_key" "$index" "$@"; then
      tik_pip_from "$TIK_HOME/cache/pip" "$@" && return 0
    fi
  elif tik_pip_take "$_tik_key" "$TIK_HOME/.tik-wheels"; then
    tik_pip_from "$TIK_HOME/.tik-wheels" "$@" 2>/dev/null && {
      echo "installed $* from the head's download cache"
      return 0
    }
  fi
  tik_pip install "$index" "$@"
}

# tik_pip_key PIP_ARGS...: what names one pip call in the cache: its arguments, a
# requirements file's content in place of its path (which differs per node).
tik_pip_key() {
  _tik_r=0
  for _tik_a in "$@"; do
    if [ "$_tik_r" = 1 ]; then cat "$_tik_a" 2>/dev/null; else printf '%s\n' "$_tik_a"; fi
    _tik_r=0
    [ "$_tik_a" != -r ] || _tik_r=1
  done >"$dir/venv/pip-call"
  tik_digest sha256 "$dir/venv/pip-call" | cut -c1-32
  rm -f "$dir/venv/pip-call"
}

# tik_pip_build KEY INDEX PIP_ARGS...: on the head, the call's wheels are in the
# cache (cache/pip, with those already there) and listed in cache/pip/sums-KEY.
tik_pip_build() {
  _tik_w="$TIK_HOME/cache/pip"
  _tik_new="$_tik_w/new-$1"
  _tik_k=$1
  _tik_i=$2
  shift 2
  rm -rf "$_tik_new" && mkdir -p "$_tik_new" || return 1
  tik_pip wheel "$_tik_i" --find-links "$_tik_w" -w "$_tik_new" "$@" >/dev/null || {
    rm -rf "$_tik_new"
    return 1
  }
  for _tik_f in "$_tik_new"/*.whl; do
    [ -f "$_tik_f" ] || continue
    printf '%s  %s\n' "$(tik_digest sha256 "$_tik_f")" "$(basename "$_tik_f")"
  done >"$_tik_w/sums-$_tik_k.part"
  mv "$_tik_new"/*.whl "$_tik_w"/ 2>/dev/null
  rm -rf "$_tik_new"
  mv "$_tik_w/sums-$_tik_k.part" "$_tik_w/sums-$_tik_k"
  tik_cache_serve
}

# tik_pip_take KEY DIR: DIR holds the wheels the head listed for the call KEY,
# each checked against its sha256 (those already there and right are kept).
tik_pip_take() {
  _tik_cache=$(tik_cache_url) || return 1
  mkdir -p "$2" || return 1
  tik_get "$_tik_cache/pip/sums-$1" "$2/sums-$1" 2>/dev/null || return 1
  while read -r _tik_sum _tik_name; do
    # A name is a file in the cache, nothing else.
    case "$_tik_name" in "" | */* | .*) return 1 ;; esac
    [ -f "$2/$_tik_name" ] && [ "$(tik_digest sha256 "$2/$_tik_name")" = "$_tik_sum" ] && continue
    tik_get_checked "$_tik_cache/pip/$_tik_name" sha256 "$_tik_sum" "$2/$_tik_name" || return 1
  done <"$2/sums-$1"
}

# tik_pip_from DIR PIP_ARGS...: pip install PIP_ARGS from the wheels in DIR alone.
# A requirements file's hashes are those of what the index serves, not of the
# wheels built from it (checked on the head, and by their sha256 since): left out.
tik_pip_from() {
  _tik_from=$1
  shift
  _tik_n=$#
  _tik_r=0
  for _tik_a in "$@"; do
    if [ "$_tik_r" = 1 ]; then
      sed 's/[[:space:]]*--hash=[^[:space:]]*//g' "$_tik_a" >"$_tik_a.wheels" || return 1
      _tik_a="$_tik_a.wheels"
    fi
    _tik_r=0
    [ "$_tik_a" != -r ] || _tik_r=1
    set -- "$@" "$_tik_a"
  done
  shift "$_tik_n"
  tik_pip install "" --no-index --find-links "$_tik_from" "$@"
}

# tik_pip COMMAND INDEX ARGS...: the venv's pip COMMAND (from INDEX when it is
# not empty), quietly.
tik_pip() {
  _tik_c=$1
  _tik_i=$2
  shift 2
  [ -z "$_tik_i" ] || set -- --index-url "$_tik_i" "$@"
  "$_tik_pip" "$_tik_c" --quiet --disable-pip-version-check "$@"
}
