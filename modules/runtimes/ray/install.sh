set -e
mkdir -p "$TIK_HOME/ray/logs"
tik_pip_install "$TIK_HOME/ray" "$TIK_PARAM_PYTHON" "$TIK_PARAM_PIP_INDEX" "ray[default]==$TIK_PARAM_VERSION"
