# grafana.ini on the node's address, data under its home; the admin password from the
# param in a file only the node's user reads, which grafana.ini names (Grafana would
# expand a "${...}" written into grafana.ini itself); Prometheus provisioned.
set -e
d="$TIK_HOME/grafana"
# Paths go into grafana.ini between backquotes, taken as written, but for Grafana's
# expansion of ${...} and $__file{...}.
case "$d" in
  *'`'* | *'$'* | *'}'* | *"
"*) tik_fail "the node's home ($TIK_HOME) has a backquote, \$, } or a line break in its path, which grafana.ini cannot hold" ;;
esac
mkdir -p "$d/conf/provisioning/datasources" "$d/conf/provisioning/dashboards" "$d/data" "$d/logs"
umask 077
printf '%s' "$TIK_PARAM_ADMIN_PASSWORD" >"$d/conf/admin_password.part"
mv "$d/conf/admin_password.part" "$d/conf/admin_password"
cat >"$d/conf/grafana.ini" <<INI
[server]
http_addr = $TIK_NODE_IP
http_port = $TIK_PARAM_PORT
[paths]
data = \`$d/data\`
logs = \`$d/logs\`
provisioning = \`$d/conf/provisioning\`
[security]
admin_password = \`\$__file{$d/conf/admin_password}\`
[analytics]
reporting_enabled = false
check_for_updates = false
INI
# yaml TEXT: TEXT inside a YAML double-quoted string, where Grafana's provisioning
# would expand $NAME ($$ is a dollar sign).
yaml() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g'; }
prometheus=${TIK_PARAM_PROMETHEUS_URL:-"http://$TIK_HEAD_IP:9090"}
if [ "$prometheus" != none ]; then
  cat >"$d/conf/provisioning/datasources/prometheus.yaml" <<YAML
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    access: proxy
    url: "$(yaml "$prometheus")"
    isDefault: true
YAML
else
  rm -f "$d/conf/provisioning/datasources/prometheus.yaml"
fi
