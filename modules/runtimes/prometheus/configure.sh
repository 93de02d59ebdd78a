# prometheus.yml: itself, and each of the given targets.
set -e
d="$TIK_HOME/prometheus"
mkdir -p "$d/conf" "$d/data"
{
  echo "global:"
  echo "  scrape_interval: 15s"
  echo "scrape_configs:"
  echo "  - job_name: prometheus"
  echo "    static_configs:"
  echo "      - targets: ['$TIK_NODE_IP:$TIK_PARAM_PORT']"
  if [ -n "$TIK_PARAM_TARGETS" ]; then
    echo "  - job_name: targets"
    echo "    static_configs:"
    echo "      - targets:"
    printf '%s\n' "$TIK_PARAM_TARGETS" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep . |
      sed "s/'/''/g; s/.*/          - '&'/"
  fi
} >"$d/conf/prometheus.yml"
