d="$TIK_HOME/grafana"
tik_daemon "$d/server.pid" "$d/logs/server.out" "$d/current/bin/grafana" server \
  --homepath "$d/current" --config "$d/conf/grafana.ini"
