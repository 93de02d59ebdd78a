d="$TIK_HOME/ray"
# Ray keeps unix sockets under its temp dir, whose paths may not exceed 107 bytes: a
# short directory of this node's own (a hash of its home), not one under the home.
t="${TMPDIR:-/tmp}/tik-ray-$(printf %s "$TIK_HOME" | cksum | cut -d' ' -f1)"
mkdir -p "$t"
ln -sfn "$t" "$d/tmp"
set -- --head --block --node-ip-address "$TIK_NODE_IP" --port "$TIK_PARAM_PORT" \
  --dashboard-host "$TIK_NODE_IP" --dashboard-port "$TIK_PARAM_DASHBOARD_PORT" --temp-dir "$t"
[ -z "$TIK_PARAM_NUM_CPUS" ] || set -- "$@" --num-cpus "$TIK_PARAM_NUM_CPUS"
tik_daemon "$d/head.pid" "$d/logs/head.out" "$d/venv/bin/ray" start "$@"
