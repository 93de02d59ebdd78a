set -e
tik_need_java
V=$TIK_PARAM_VERSION
tik_install_archive zookeeper \
  "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/zookeeper/zookeeper-$V/apache-zookeeper-$V-bin.tar.gz}" \
  "$TIK_PARAM_CHECKSUM"
