export SPARK_HOME="$TIK_HOME/spark/current" SPARK_CONF_DIR="$TIK_HOME/spark/conf"
nohup "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host "$TIK_NODE_IP" --port "$TIK_PARAM_MASTER_PORT" --webui-port "$TIK_PARAM_MASTER_UI_PORT" \
  >"$TIK_HOME/spark/logs/master.out" 2>&1 &
echo $! >"$TIK_HOME/spark/master.pid"
