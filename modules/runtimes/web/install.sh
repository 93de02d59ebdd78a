command -v python3 >/dev/null || { echo "the web runtime needs python3 on the node" >&2; exit 1; }
mkdir -p "$TIK_HOME/web"
