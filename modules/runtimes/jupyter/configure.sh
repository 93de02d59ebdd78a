# The server's config: address, port, notebooks under the node's home, and the token
# in a file only the node's user reads (never on a command line).
set -e
d="$TIK_HOME/jupyter"
mkdir -p "$d/conf" "$d/notebooks"
umask 077
python3 -c 'import json, sys
print(json.dumps({"ServerApp": {"ip": sys.argv[1], "port": int(sys.argv[2]), "open_browser": False,
  "root_dir": sys.argv[3], "allow_root": True, "IdentityProvider": {"token": sys.argv[4]}},
  "IdentityProvider": {"token": sys.argv[4]}}, indent=1))' \
  "$TIK_NODE_IP" "$TIK_PARAM_PORT" "$d/notebooks" "$TIK_PARAM_TOKEN" >"$d/conf/jupyter_server_config.json"
