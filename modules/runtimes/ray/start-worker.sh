d="$TIK_HOME/ray"
set -- --block --address "$TIK_HEAD_IP:$TIK_PARAM_PORT" --node-ip-address "$TIK_NODE_IP"
[ -z "$TIK_PARAM_NUM_CPUS" ] || set -- "$@" --num-cpus "$TIK_PARAM_NUM_CPUS"
tik_daemon "$d/worker.pid" "$d/logs/worker.out" "$d/venv/bin/ray" start "$@"
