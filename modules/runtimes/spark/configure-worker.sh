# A worker's spark-env.sh: its address, cores, memory and scratch directory.
set -e
conf="$TIK_HOME/spark/conf"
mkdir -p "$conf"
{
  echo "SPARK_LOCAL_IP=$(tik_q "$TIK_NODE_IP")"
  echo "SPARK_WORKER_CORES=$(tik_q "$TIK_PARAM_WORKER_CORES")"
  echo "SPARK_WORKER_MEMORY=$(tik_q "$TIK_PARAM_WORKER_MEMORY")"
  echo "SPARK_WORKER_DIR=$(tik_q "$TIK_HOME/spark/work")"
  echo "SPARK_DAEMON_MEMORY=$(tik_q "$TIK_PARAM_DAEMON_MEMORY")"
  echo "SPARK_LOG_DIR=$(tik_q "$TIK_HOME/spark/logs")"
  echo "PYSPARK_PYTHON=$(tik_q "$TIK_PARAM_PYTHON")"
} >"$conf/spark-env.sh"
