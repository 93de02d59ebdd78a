d="$TIK_HOME/jupyter"
export JUPYTER_CONFIG_DIR="$d/conf"
# The cluster's Spark, when it runs here, is the lab's too.
[ -d "$TIK_HOME/spark/current" ] && export SPARK_HOME="$TIK_HOME/spark/current"
tik_daemon "$d/lab.pid" "$d/logs/lab.out" "$d/venv/bin/jupyter" lab
