# core-site.xml and hdfs-site.xml: the NameNode on the head, data under the node's
# home, every address the node's own.
set -e
d="$TIK_HOME/hdfs"
# xml TEXT: TEXT as XML character data.
xml() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
# dir_uri PATH: the file: URI of the directory PATH (Hadoop reads its data
# directories as URIs), with what a URI may not hold percent-encoded.
dir_uri() {
  printf 'file://%s' "$(printf '%s' "$1" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/"/%22/g' \
    -e 's/#/%23/g' -e 's/</%3C/g' -e 's/>/%3E/g' -e 's/?/%3F/g' -e 's/\[/%5B/g' \
    -e 's/\\/%5C/g' -e 's/]/%5D/g' -e 's/\^/%5E/g' -e 's/`/%60/g' -e 's/{/%7B/g' \
    -e 's/|/%7C/g' -e 's/}/%7D/g' -e 's/	/%09/g')"
}
case "$d" in
  *"
"*) tik_fail "the node's home ($TIK_HOME) has a line break in its path, which Hadoop's configuration cannot hold" ;;
esac
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
  <property><name>dfs.namenode.name.dir</name><value>$(xml "$(dir_uri "$d/data/name")")</value></property>
  <property><name>dfs.datanode.data.dir</name><value>$(xml "$(dir_uri "$d/data/data")")</value></property>
  <property><name>dfs.namenode.rpc-bind-host</name><value>$TIK_NODE_IP</value></property>
  <property><name>dfs.namenode.http-address</name><value>$TIK_NODE_IP:$TIK_PARAM_NAMENODE_UI_PORT</value></property>
  <property><name>dfs.datanode.address</name><value>$TIK_NODE_IP:9866</value></property>
  <property><name>dfs.datanode.http.address</name><value>$TIK_NODE_IP:$TIK_PARAM_DATANODE_UI_PORT</value></property>
  <property><name>dfs.datanode.ipc.address</name><value>$TIK_NODE_IP:9867</value></property>
</configuration>
XML
