# grafana.ini on the node's address, data under its home; the admin password from the
# param (reaching the file as written, never the command line); Prometheus provisioned.
set -e
d="$TIK_HOME/grafana"
mkdir -p "$d/conf/provisioning/datasources" "$d/conf/provisioning/dashboards" "$d/data" "$d/logs"
umask 077
cat >"$d/conf/grafana.ini" <<INI
[server]
http_addr = $TIK_NODE_IP
http_port = $TIK_PARAM_PORT
[paths]
data = $d/data
logs = $d/logs
provisioning = $d/conf/provisioning
[security]
admin_password = """$TIK_PARAM_ADMIN_PASSWORD"""
[analytics]
reporting_enabled = false
check_for_updates = false
INI
prometheus=${TIK_PARAM_PROMETHEUS_URL:-"http://$TIK_HEAD_IP:9090"}
if [ "$prometheus" != none ]; then
  cat >"$d/conf/provisioning/datasources/prometheus.yaml" <<YAML
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    access: proxy
    url: "$prometheus"
    isDefault: true
YAML
else
  rm -f "$d/conf/provisioning/datasources/prometheus.yaml"
fi
