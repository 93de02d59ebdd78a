set -e
V=$TIK_PARAM_VERSION
url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/grafana-$V.$TIK_PARAM_ARCH.tar.gz"}
sum=$TIK_PARAM_CHECKSUM
if [ -z "$sum" ]; then
  tik_get "$url.sha256" "$TIK_HOME/grafana.sha256" || tik_fail "no checksum given and none published at $url.sha256: set the checksum param"
  sum="sha256:$(tr -d ' \r\n' <"$TIK_HOME/grafana.sha256" | cut -c1-64)"
  rm -f "$TIK_HOME/grafana.sha256"
fi
tik_install_archive grafana "$url" "$sum"
