# Shared by the shipped runtimes (file("../_lib/fetch.sh")): download an upstream
# archive once, verify it, and unpack it. POSIX sh; needs curl, wget or python3.

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
# layout ("HEX  name", "name: HEX HEX ..." as gpg prints it, upper or lower case).
tik_checksum_of() {
  printf '%s\n' "$1" | sed 's/^[^:]*: //' | tr -d ' \t\r\n' | tr 'A-F' 'a-f' |
    grep -o '^[0-9a-f]*' | head -c 128
}

# tik_fetch URL CHECKSUM FILE: FILE holds URL's archive, verified. CHECKSUM is
# "sha512:HEX", "sha256:HEX" or bare HEX (its length says which); empty means the
# checksum upstream publishes beside the archive (URL.sha512). A file already there
# with the right checksum is not downloaded again.
tik_fetch() {
  url=$1
  want=$2
  file=$3
  mkdir -p "$(dirname "$file")" || exit 1
  if [ -z "$want" ]; then
    tik_get "$url.sha512" "$file.sha512" ||
      tik_fail "no checksum given and none published at $url.sha512: set the runtime's checksum param"
    want="sha512:$(tik_checksum_of "$(cat "$file.sha512")")"
    rm -f "$file.sha512"
  fi
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
  tik_get "$url" "$file.part" || { rm -f "$file.part"; tik_fail "cannot download $url (set the runtime's mirror or url param to a reachable copy)"; }
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
