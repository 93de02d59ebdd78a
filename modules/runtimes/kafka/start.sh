tik_need_java
d="$TIK_HOME/kafka"
export LOG_DIR="$d/logs" KAFKA_HEAP_OPTS="-Xmx$TIK_PARAM_HEAP -Xms$TIK_PARAM_HEAP"
tik_daemon "$d/broker.pid" "$d/logs/broker.out" "$d/current/bin/kafka-server-start.sh" "$d/conf/server.properties"
