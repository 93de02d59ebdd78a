d="$TIK_HOME/minio"
MINIO_ROOT_USER=$(sed -n 's/^MINIO_ROOT_USER=//p' "$d/conf/credentials")
MINIO_ROOT_PASSWORD=$(sed -n 's/^MINIO_ROOT_PASSWORD=//p' "$d/conf/credentials")
export MINIO_ROOT_USER MINIO_ROOT_PASSWORD
tik_daemon "$d/server.pid" "$d/logs/server.out" "$d/bin/minio" server "$d/data" \
  --address "$TIK_NODE_IP:$TIK_PARAM_PORT" --console-address "$TIK_NODE_IP:$TIK_PARAM_CONSOLE_PORT"
