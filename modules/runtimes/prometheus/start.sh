d="$TIK_HOME/prometheus"
tik_daemon "$d/server.pid" "$d/logs/server.out" "$d/server" \
  --config.file="$d/conf/prometheus.yml" --storage.tsdb.path="$d/data" \
  --storage.tsdb.retention.time="$TIK_PARAM_RETENTION" \
  --web.listen-address="$TIK_NODE_IP:$TIK_PARAM_PORT"
