tik_need_java
d="$TIK_HOME/hdfs"
export HADOOP_CONF_DIR="$d/conf" HADOOP_LOG_DIR="$d/logs" HADOOP_HEAPSIZE_MAX="$TIK_PARAM_HEAP"
# A new NameNode formats its directory once; a restart keeps the filesystem.
if [ ! -f "$d/data/name/current/VERSION" ]; then
  "$d/current/bin/hdfs" namenode -format -nonInteractive -force >"$d/logs/format.out" 2>&1 ||
    tik_fail "formatting the NameNode failed: see $d/logs/format.out"
fi
tik_daemon "$d/namenode.pid" "$d/logs/namenode.out" "$d/current/bin/hdfs" namenode
