d="$TIK_HOME/node_exporter"
tik_daemon "$d/exporter.pid" "$d/exporter.out" "$d/exporter" \
  --web.listen-address="$TIK_NODE_IP:$TIK_PARAM_NODE_EXPORTER_PORT"
