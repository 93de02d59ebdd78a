set -e
V=$TIK_PARAM_VERSION
url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/grafana-$V.$TIK_PARAM_ARCH.tar.gz"}
tik_install_archive grafana "$url" "${TIK_PARAM_CHECKSUM:-sums:$url.sha256}"
