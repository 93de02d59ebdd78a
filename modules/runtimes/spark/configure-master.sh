# The master's spark-env.sh, and spark-defaults.conf so that spark-submit on the head
# goes to this cluster.
set -e
conf="$TIK_HOME/spark/conf"
mkdir -p "$conf"
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "SPARK_LOCAL_IP=$(q "$TIK_NODE_IP")"
  echo "SPARK_MASTER_HOST=$(q "$TIK_NODE_IP")"
  echo "SPARK_DAEMON_MEMORY=$(q "$TIK_PARAM_DAEMON_MEMORY")"
  echo "SPARK_LOG_DIR=$(q "$TIK_HOME/spark/logs")"
  echo "PYSPARK_PYTHON=$(q "$TIK_PARAM_PYTHON")"
} >"$conf/spark-env.sh"
{
  echo "spark.master spark://$TIK_NODE_IP:$TIK_PARAM_MASTER_PORT"
  echo "spark.driver.host $TIK_NODE_IP"
  echo "spark.pyspark.python $TIK_PARAM_PYTHON"
} >"$conf/spark-defaults.conf"
