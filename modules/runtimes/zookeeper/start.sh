tik_need_java
d="$TIK_HOME/zookeeper"
[ -f "$d/classpath" ] || tik_fail "ZooKeeper is not installed on this node: its install step has not run"
tik_daemon "$d/server.pid" "$d/logs/server.out" "$JAVA_HOME/bin/java" "-Xmx$TIK_PARAM_HEAP" \
  -Dzookeeper.log.dir="$d/logs" -cp "$(cat "$d/classpath")" \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/conf/zoo.cfg"
