set -e
tik_need_java
V=$TIK_PARAM_VERSION
tik_install_archive hdfs \
  "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/hadoop/common/hadoop-$V/hadoop-$V.tar.gz}" \
  "$TIK_PARAM_CHECKSUM"
# hdfs and hadoop on the PATH of `tik exec` and `tik ssh`.
mkdir -p "$TIK_HOME/profile.d"
printf '%s\n' 'export HADOOP_HOME="$TIK_HOME/hdfs/current"' 'export PATH="$HADOOP_HOME/bin:$PATH"' >"$TIK_HOME/profile.d/hdfs.sh"
