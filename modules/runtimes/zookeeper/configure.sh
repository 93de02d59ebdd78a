# zoo.cfg: data under the node's home, the client port on the node's address, the
# admin server off (its port 8080 is Spark's), and `ruok` for the health check.
set -e
d="$TIK_HOME/zookeeper"
mkdir -p "$d/conf" "$d/data" "$d/logs"
cat >"$d/conf/zoo.cfg" <<CFG
tickTime=2000
dataDir=$d/data
clientPort=$TIK_PARAM_CLIENT_PORT
clientPortAddress=$TIK_NODE_IP
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
CFG
