# The node exporter's binary, linked as $TIK_HOME/node_exporter/exporter: upstream's
# release, or the distribution's package.
set -e
d="$TIK_HOME/node_exporter"
mkdir -p "$d"
case "$TIK_PARAM_INSTALL_METHOD" in
  archive)
    V=$TIK_PARAM_NODE_EXPORTER_VERSION
    M=$TIK_PARAM_NODE_EXPORTER_MIRROR
    tik_install_archive node_exporter \
      "$M/v$V/node_exporter-$V.$TIK_PARAM_ARCH.tar.gz" \
      "${TIK_PARAM_NODE_EXPORTER_CHECKSUM:-sums:$M/v$V/sha256sums.txt}"
    ln -sfn "$d/current/node_exporter" "$d/exporter"
    ;;
  package)
    tik_apt_install prometheus-node-exporter
    ln -sfn /usr/bin/prometheus-node-exporter "$d/exporter"
    ;;
  *) tik_fail "install_method must be \"archive\" or \"package\", got \"$TIK_PARAM_INSTALL_METHOD\"" ;;
esac
"$d/exporter" --version 2>&1 | head -n 1
