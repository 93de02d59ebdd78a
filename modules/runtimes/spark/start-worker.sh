export SPARK_HOME="$TIK_HOME/spark/current" SPARK_CONF_DIR="$TIK_HOME/spark/conf"
nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
  --host "$TIK_NODE_IP" --webui-port "$TIK_PARAM_WORKER_UI_PORT" \
  "spark://$TIK_HEAD_IP:$TIK_PARAM_MASTER_PORT" \
  >"$TIK_HOME/spark/logs/worker.out" 2>&1 &
echo $! >"$TIK_HOME/spark/worker.pid"
