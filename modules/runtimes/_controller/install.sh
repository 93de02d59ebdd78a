# tik's own binary on the head: apply copied the one it ran as to
# controller/bin/tik.new before this step (the step's put).
set -eu
d="$TIK_HOME/controller"
here="$(uname -s) $(uname -m)"
case "$here" in
  "$TIK_PARAM_PLATFORM") ;;
  "Linux arm64") [ "$TIK_PARAM_PLATFORM" = "Linux aarch64" ] || bad=1 ;;
  *) bad=1 ;;
esac
if [ -n "${bad-}" ]; then
  rm -f "$d/bin/tik.new"
  echo "the tik that ran apply is built for $TIK_PARAM_PLATFORM, and this head is $here: run tik apply with a tik built for $here, or use a head of the same kind" >&2
  exit 1
fi
chmod 0755 "$d/bin/tik.new"
mv -f "$d/bin/tik.new" "$d/bin/tik"
