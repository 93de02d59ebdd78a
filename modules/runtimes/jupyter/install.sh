set -e
mkdir -p "$TIK_HOME/jupyter/notebooks" "$TIK_HOME/jupyter/logs"
tik_pip_install "$TIK_HOME/jupyter" "$TIK_PARAM_PYTHON" "$TIK_PARAM_PIP_INDEX" "jupyterlab==$TIK_PARAM_VERSION"
