tik_need_java
d="$TIK_HOME/hdfs"
export HADOOP_CONF_DIR="$d/conf" HADOOP_LOG_DIR="$d/logs" HADOOP_HEAPSIZE_MAX="$TIK_PARAM_HEAP"
tik_daemon "$d/datanode.pid" "$d/logs/datanode.out" "$d/current/bin/hdfs" datanode
