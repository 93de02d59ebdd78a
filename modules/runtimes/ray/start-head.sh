d="$TIK_HOME/ray"
set -- --head --block --node-ip-address "$TIK_NODE_IP" --port "$TIK_PARAM_PORT" \
  --dashboard-host "$TIK_NODE_IP" --dashboard-port "$TIK_PARAM_DASHBOARD_PORT" --temp-dir "$d/tmp"
[ -z "$TIK_PARAM_NUM_CPUS" ] || set -- "$@" --num-cpus "$TIK_PARAM_NUM_CPUS"
tik_daemon "$d/head.pid" "$d/logs/head.out" "$d/venv/bin/ray" start "$@"
