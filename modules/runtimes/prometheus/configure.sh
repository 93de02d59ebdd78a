# prometheus.yml: itself, the cluster's node exporters ($TIK_NODE_HOSTS, on port
# $TIK_PARAM_NODE_EXPORTER_PORT), and
# each of the given targets.
set -e
d="$TIK_HOME/prometheus"
mkdir -p "$d/conf" "$d/data"
targets() {
  printf '%s\n' "$1" | tr ', ' '\n\n' | grep . | sed "s/'/''/g; s/.*/          - '&'/"
}
{
  echo "global:"
  echo "  scrape_interval: $TIK_PARAM_SCRAPE_INTERVAL"
  echo "scrape_configs:"
  echo "  - job_name: prometheus"
  echo "    static_configs:"
  echo "      - targets: ['$TIK_NODE_IP:$TIK_PARAM_PORT']"
  if [ -n "$TIK_NODE_HOSTS" ]; then
    echo "  - job_name: node"
    echo "    static_configs:"
    echo "      - targets:"
    for h in $TIK_NODE_HOSTS; do
      targets "$h:$TIK_PARAM_NODE_EXPORTER_PORT"
    done
  fi
  if [ -n "$TIK_PARAM_TARGETS" ]; then
    echo "  - job_name: targets"
    echo "    static_configs:"
    echo "      - targets:"
    targets "$TIK_PARAM_TARGETS"
  fi
} >"$d/conf/prometheus.yml"
# Checked with the release's promtool, or the distribution's.
tool="$d/current/promtool"
[ -x "$tool" ] || tool=$(command -v promtool || true)
[ -z "$tool" ] || "$tool" check config "$d/conf/prometheus.yml"
