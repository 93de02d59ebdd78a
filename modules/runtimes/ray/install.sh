set -e
mkdir -p "$TIK_HOME/ray/logs"
tik_pip_install "$TIK_HOME/ray" "$TIK_PARAM_PYTHON" "$TIK_PARAM_PIP_INDEX" "ray[default]==$TIK_PARAM_VERSION"
# ray and its Python on the PATH of `tik exec` and `tik ssh`.
mkdir -p "$TIK_HOME/profile.d"
printf '%s\n' 'export PATH="$TIK_HOME/ray/venv/bin:$PATH"' >"$TIK_HOME/profile.d/ray.sh"
