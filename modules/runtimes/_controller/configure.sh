# The configuration as applied and the state backend's settings, put in place
# whole: a round starting meanwhile sees the old copy or the new. (Another
# configuration, with another hash, copies them again.)
set -eu
umask 077
d="$TIK_HOME/controller"
rm -rf "$d/project.new"
mkdir -p "$d/project.new/.tik"
printf '%s\n' "$TIK_PARAM_FILES" | while IFS= read -r f; do
  [ -n "$f" ] || continue
  case "/$f/" in
    */../* | //*) echo "tik does not copy the file $f: not a path within the project" >&2; exit 1 ;;
  esac
  mkdir -p "$d/project.new/$(dirname -- "$f")"
  cp -- "$TIK_PARAM_PROJECT/$f" "$d/project.new/$f"
done
printf '%s\n' "$TIK_PARAM_BACKEND" >"$d/project.new/.tik/backend.json"
printf '%s\n' "$TIK_PARAM_CONFIG_HASH" >"$d/project.new/.tik/copied-hash"
rm -rf "$d/project.old"
if [ -d "$d/project" ]; then mv "$d/project" "$d/project.old"; fi
mv "$d/project.new" "$d/project"
rm -rf "$d/project.old"
