# core-site.xml and hdfs-site.xml: the NameNode on the head, data under the node's
# home, every address the node's own.
set -e
d="$TIK_HOME/hdfs"
mkdir -p "$d/conf" "$d/data/name" "$d/data/data" "$d/logs"
cat >"$d/conf/core-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://$TIK_HEAD_IP:$TIK_PARAM_NAMENODE_PORT</value></property>
</configuration>
XML
cat >"$d/conf/hdfs-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>dfs.replication</name><value>$TIK_PARAM_REPLICATION</value></property>
  <property><name>dfs.namenode.name.dir</name><value>file://$d/data/name</value></property>
  <property><name>dfs.datanode.data.dir</name><value>file://$d/data/data</value></property>
  <property><name>dfs.namenode.rpc-bind-host</name><value>$TIK_NODE_IP</value></property>
  <property><name>dfs.namenode.http-address</name><value>$TIK_NODE_IP:$TIK_PARAM_NAMENODE_UI_PORT</value></property>
  <property><name>dfs.datanode.address</name><value>$TIK_NODE_IP:9866</value></property>
  <property><name>dfs.datanode.http.address</name><value>$TIK_NODE_IP:$TIK_PARAM_DATANODE_UI_PORT</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>$TIK_NODE_IP:9867</value></property>
</configuration>
XML
