# A worker's spark-env.sh: its address, cores, memory and scratch directory.
set -e
conf="$TIK_HOME/spark/conf"
mkdir -p "$conf"
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "SPARK_LOCAL_IP=$(q "$TIK_NODE_IP")"
  echo "SPARK_WORKER_CORES=$(q "$TIK_PARAM_WORKER_CORES")"
  echo "SPARK_WORKER_MEMORY=$(q "$TIK_PARAM_WORKER_MEMORY")"
  echo "SPARK_WORKER_DIR=$(q "$TIK_HOME/spark/work")"
  echo "SPARK_DAEMON_MEMORY=$(q "$TIK_PARAM_DAEMON_MEMORY")"
  echo "SPARK_LOG_DIR=$(q "$TIK_HOME/spark/logs")"
  echo "PYSPARK_PYTHON=$(q "$TIK_PARAM_PYTHON")"
} >"$conf/spark-env.sh"
