set -e
mkdir -p "$TIK_HOME/ray/logs" "$TIK_HOME/ray/tmp"
tik_pip_install "$TIK_HOME/ray" "$TIK_PARAM_PYTHON" "$TIK_PARAM_PIP_INDEX" "ray[default]==$TIK_PARAM_VERSION"
