tik_need_java
d="$TIK_HOME/zookeeper"
export ZOO_LOG_DIR="$d/logs" ZOOCFGDIR="$d/conf" JVMFLAGS="-Xmx$TIK_PARAM_HEAP"
tik_daemon "$d/server.pid" "$d/logs/server.out" "$d/current/bin/zkServer.sh" start-foreground "$d/conf/zoo.cfg"
