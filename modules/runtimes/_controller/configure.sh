# The configuration as applied and the state backend's settings, put in place
# whole: a round starting meanwhile sees the old copy or the new. Apply copied the
# project's files to controller/project.new before this step (the step's put);
# another configuration, with another hash, copies them again.
set -eu
umask 077
d="$TIK_HOME/controller"
mkdir -p "$d/project.new/.tik"
printf '%s\n' "$TIK_PARAM_BACKEND" >"$d/project.new/.tik/backend.json"
printf '%s\n' "$TIK_PARAM_CONFIG_HASH" >"$d/project.new/.tik/copied-hash"
rm -rf "$d/project.old"
if [ -d "$d/project" ]; then mv "$d/project" "$d/project.old"; fi
mv "$d/project.new" "$d/project"
rm -rf "$d/project.old"
