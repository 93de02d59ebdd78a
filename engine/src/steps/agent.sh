# tik's agent on a node: one per connection, so the login shell's start-up files
# (a .bashrc that runs conda or pyenv) run once, not once per step. It reads
# requests on stdin and runs each script as a job of its own, with `sh FILE`:
#
#   run K w|n END     then the script's lines, then a line END. With w the job's
#                     stdin stays open until "stop K", or until the agent ends; with
#                     n it is /dev/null.
#   stop K            closes job K's stdin (a watched step stops when it does).
#
# It answers "tik-agent ready" once, then one frame per finished job:
#
#   K RC OUT ERR      then OUT bytes of the job's stdout and ERR of its stderr.
#
# When stdin ends (tik ended, or its connection did), every job's stdin closes.
set -f
d=$(mktemp -d "${TMPDIR:-/tmp}/tik-agent.XXXXXX") || exit 1
agent=$$
mkfifo "$d/done" || { rm -rf "$d"; exit 1; }
# Held open for reading and writing, so a finished job's line never blocks.
exec 4<>"$d/done"
# The one writer of stdout: frames never interleave.
while read -r k rc <&4; do
  o=$(wc -c <"$d/$k.out") e=$(wc -c <"$d/$k.err")
  printf '%s %s %s %s\n' "$k" "$rc" $o $e
  cat "$d/$k.out" "$d/$k.err"
  rm -f "$d/$k.sh" "$d/$k.in" "$d/$k.out" "$d/$k.err" "$d/$k.hold"
done </dev/null &
writer=$!
printf 'tik-agent ready\n'
while IFS= read -r line; do
  set -- $line
  case ${1-} in
  run)
    k=$2
    while IFS= read -r l && [ "$l" != "$4" ]; do printf '%s\n' "$l"; done >"$d/$k.sh"
    in=/dev/null
    if [ "$3" = w ]; then
      in=$d/$k.in
      mkfifo "$in"
      # Holds the job's stdin open; its naps write nowhere, so killing it closes it.
      (exec </dev/null 4>&- >"$in"; while kill -0 "$agent" 2>/dev/null; do sleep 1 >/dev/null; done) &
      echo $! >"$d/$k.hold"
    fi
    (
      sh "$d/$k.sh" <"$in" >"$d/$k.out" 2>"$d/$k.err" 4>&-
      rc=$?
      [ -f "$d/$k.hold" ] && read -r h <"$d/$k.hold" && kill "$h" 2>/dev/null
      echo "$k $rc" >&4
    ) </dev/null &
    ;;
  stop)
    [ -f "$d/$2.hold" ] && read -r h <"$d/$2.hold" && kill "$h" 2>/dev/null
    ;;
  esac
done
set +f
for f in "$d"/*.hold; do
  [ -f "$f" ] && read -r h <"$f" && kill "$h" 2>/dev/null
done
kill "$writer" 2>/dev/null
wait
rm -rf "$d"
