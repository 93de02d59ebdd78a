# zoo.cfg: data under the node's home, the client port on the node's address, the
# admin server off (its port 8080 is Spark's), and `ruok`/`srvr` for health checks.
# In an ensemble ($TIK_ZK_SERVERS set), the members and this server's id in myid.
set -e
d="$TIK_HOME/zookeeper"
mkdir -p "$d/conf" "$d/data" "$d/logs"
{
  echo "tickTime=2000"
  echo "dataDir=$d/data"
  echo "clientPort=$TIK_PARAM_CLIENT_PORT"
  echo "clientPortAddress=$TIK_NODE_IP"
  echo "admin.enableServer=false"
  echo "4lw.commands.whitelist=ruok,srvr,stat,mntr"
  if [ -n "$TIK_ZK_SERVERS" ]; then
    echo "initLimit=10"
    echo "syncLimit=5"
    # Listen for peers on this node's address only (each node has its own).
    echo "quorumListenOnAllIPs=false"
    # Each member is server.N=ADDRESS; its ports come from the params' variables.
    for s in $TIK_ZK_SERVERS; do
      echo "$s:$TIK_PARAM_PEER_PORT:$TIK_PARAM_ELECTION_PORT"
    done
  fi
} >"$d/conf/zoo.cfg"
if [ -n "$TIK_ZK_SERVERS" ]; then
  echo "$TIK_ZK_ID" >"$d/data/myid"
else
  rm -f "$d/data/myid"
fi
cat "$d/conf/zoo.cfg"
