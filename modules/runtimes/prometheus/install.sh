set -e
V=$TIK_PARAM_VERSION
tik_install_archive prometheus \
  "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/v$V/prometheus-$V.$TIK_PARAM_ARCH.tar.gz}" \
  "${TIK_PARAM_CHECKSUM:-sums:$TIK_PARAM_MIRROR/v$V/sha256sums.txt}"
