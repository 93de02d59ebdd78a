#!/bin/sh
# The scheduled drift check of examples/ci/drift.yml, as a script a CI job (or a
# person) runs from a fresh clone: set up the team's state backend, then compare
# the world with the state.
#
#   TIK_BACKEND_CONFIG  optional: a file of KEY = "VALUE" backend settings kept out of git
#   TIK_BACKEND_*       optional: single settings (TIK_BACKEND_BUCKET, ...)
#   TIK_DIR             the configuration's directory (default: .)
#
# Exit 0: no drift. Exit 2: drift (drift.md says what). Exit 1: an error, also when
# no state is found where the configuration declares objects.
set -u
dir=${TIK_DIR:-.}
if [ -n "${TIK_BACKEND_CONFIG:-}" ]; then
  tik -C "$dir" init --backend-config "$TIK_BACKEND_CONFIG" || exit 1
else
  tik -C "$dir" init || exit 1
fi
tik -C "$dir" drift --markdown >drift.md
status=$?
cat drift.md
if [ "$status" -eq 2 ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat drift.md >>"$GITHUB_STEP_SUMMARY"
fi
exit "$status"
