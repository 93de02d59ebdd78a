# The master's spark-env.sh, and spark-defaults.conf so that spark-submit on the head
# goes to this cluster.
set -e
conf="$TIK_HOME/spark/conf"
mkdir -p "$conf"
{
  echo "SPARK_LOCAL_IP=$(tik_q "$TIK_NODE_IP")"
  echo "SPARK_MASTER_HOST=$(tik_q "$TIK_NODE_IP")"
  echo "SPARK_DAEMON_MEMORY=$(tik_q "$TIK_PARAM_DAEMON_MEMORY")"
  echo "SPARK_LOG_DIR=$(tik_q "$TIK_HOME/spark/logs")"
  echo "PYSPARK_PYTHON=$(tik_q "$TIK_PARAM_PYTHON")"
} >"$conf/spark-env.sh"
{
  echo "spark.master spark://$TIK_NODE_IP:$TIK_PARAM_MASTER_PORT"
  echo "spark.driver.host $TIK_NODE_IP"
  echo "spark.pyspark.python $TIK_PARAM_PYTHON"
} >"$conf/spark-defaults.conf"
