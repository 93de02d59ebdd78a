# tik's own binary on the head, copied from where apply ran it.
set -eu
d="$TIK_HOME/controller"
mkdir -p "$d/bin"
if [ ! -r "$TIK_PARAM_BINARY" ]; then
  echo "tik cannot copy its binary to this head: $TIK_PARAM_BINARY is not readable here" >&2
  exit 1
fi
cp "$TIK_PARAM_BINARY" "$d/bin/tik.new"
chmod 0755 "$d/bin/tik.new"
mv -f "$d/bin/tik.new" "$d/bin/tik"
