set -e
d="$TIK_HOME/ray"
mkdir -p "$d/logs" "$d/tmp"
command -v "$TIK_PARAM_PYTHON" >/dev/null 2>&1 ||
  tik_fail "ray needs $TIK_PARAM_PYTHON on the node (apt-get install python3 python3-venv)"
[ -x "$d/venv/bin/python" ] || "$TIK_PARAM_PYTHON" -m venv "$d/venv" ||
  tik_fail "cannot create a venv with $TIK_PARAM_PYTHON (apt-get install python3-venv)"
set -- --quiet --disable-pip-version-check
[ -z "$TIK_PARAM_PIP_INDEX" ] || set -- "$@" --index-url "$TIK_PARAM_PIP_INDEX"
"$d/venv/bin/pip" install "$@" "ray[default]==$TIK_PARAM_VERSION"
