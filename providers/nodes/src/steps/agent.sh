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
# When stdin ends (tik ended, or its connection did), or on HUP, INT or TERM, it
# closes every job's held stdin, waits for its jobs and removes its directory.
set -f
d=$(mktemp -d "${TMPDIR:-/tmp}/tik-agent.XXXXXX") || exit 1
agent=$$
mkfifo "$d/done" || { rm -rf "$d"; exit 1; }
# Held open for reading and writing: a job's line always has a reader, also once
# the writer below is stopped.
exec 4<>"$d/done"
# The one writer of stdout: frames never interleave. A job's output is copied
# first, so what a process it left behind writes later cannot change a frame.
# It reads the pipe read-only: once the agent and its jobs are gone (even
# killed), no writer is left, and it ends.
(
exec 4>&- <"$d/done"
while read -r k rc; do
  cat "$d/$k.out" >"$d/$k.o" 2>/dev/null
  cat "$d/$k.err" >"$d/$k.e" 2>/dev/null
  o=$(wc -c <"$d/$k.o") e=$(wc -c <"$d/$k.e")
  printf '%s %s %s %s\n' "$k" "$rc" ${o:-0} ${e:-0}
  cat "$d/$k.o" "$d/$k.e"
  rm -f "$d/$k.sh" "$d/$k.in" "$d/$k.out" "$d/$k.err" "$d/$k.o" "$d/$k.e" "$d/$k.hold" "$d/$k.stop"
done
) &
writer=$!
printf 'tik-agent ready\n'
# Closes job $1's stdin: its holder ends at once if it has opened the job's pipe
# (and so written its pid), or as soon as it has.
stop() {
  : >"$d/$1.stop"
  [ -f "$d/$1.hold" ] && read -r h <"$d/$1.hold" && kill "$h" 2>/dev/null
}
# Ends every job's held stdin, then waits for the jobs and removes what is left.
finish() {
  : >"$d/end"
  set +f
  for f in "$d"/*.hold; do
    [ -f "$f" ] && read -r h <"$f" && kill "$h" 2>/dev/null
  done
  kill "$writer" 2>/dev/null
  wait
  rm -rf "$d"
}
trap 'finish; exit 1' HUP INT TERM
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
      # Holds the job's stdin open until it is stopped, the agent ends or is gone.
      # Its naps write nowhere, so when it is killed the pipe closes at once.
      sh -c 'exec >"$1" </dev/null 4>&-; echo $$ >"$2"
        while [ ! -e "$3" ] && [ ! -e "$4" ] && kill -0 "$5" 2>/dev/null; do sleep 1 >/dev/null; done' \
        tik-hold "$in" "$d/$k.hold" "$d/$k.stop" "$d/end" "$agent" &
    fi
    (
      sh "$d/$k.sh" <"$in" >"$d/$k.out" 2>"$d/$k.err" 4>&-
      rc=$?
      stop "$k"
      echo "$k $rc" >&4
    ) </dev/null &
    ;;
  stop) stop "$2" ;;
  esac
done
finish
