# Prometheus's server binary, linked as $TIK_HOME/prometheus/server: upstream's
# release, or the distribution's package.
set -e
d="$TIK_HOME/prometheus"
mkdir -p "$d/conf" "$d/data" "$d/logs"
case "$TIK_PARAM_INSTALL_METHOD" in
  archive)
    V=$TIK_PARAM_VERSION
    tik_install_archive prometheus \
      "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/v$V/prometheus-$V.$TIK_PARAM_ARCH.tar.gz}" \
      "${TIK_PARAM_CHECKSUM:-sums:$TIK_PARAM_MIRROR/v$V/sha256sums.txt}"
    ln -sfn "$d/current/prometheus" "$d/server"
    ;;
  package)
    tik_apt_install prometheus
    ln -sfn /usr/bin/prometheus "$d/server"
    ;;
  *) tik_fail "install_method must be \"archive\" or \"package\", got \"$TIK_PARAM_INSTALL_METHOD\"" ;;
esac
"$d/server" --version 2>&1 | head -n 1
