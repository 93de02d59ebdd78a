set -e
tik_need_java
V=$TIK_PARAM_VERSION
tik_install_archive kafka \
  "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/kafka/$V/kafka_$TIK_PARAM_SCALA_VERSION-$V.tgz}" \
  "$TIK_PARAM_CHECKSUM"
# kafka-topics.sh and the other tools on the PATH of `tik exec` and `tik ssh`.
mkdir -p "$TIK_HOME/profile.d"
printf '%s\n' 'export PATH="$TIK_HOME/kafka/current/bin:$PATH"' >"$TIK_HOME/profile.d/kafka.sh"
