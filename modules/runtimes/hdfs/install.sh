set -e
tik_need_java
V=$TIK_PARAM_VERSION
tik_install_archive hdfs \
  "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/hadoop/common/hadoop-$V/hadoop-$V.tar.gz}" \
  "$TIK_PARAM_CHECKSUM"
