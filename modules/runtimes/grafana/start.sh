d="$TIK_HOME/grafana"
# Grafana takes admin_password only when it makes its database. On later starts
# (a changed password reruns configure and restarts) the admin's password is set
# to the param's, from the file, never the command line.
if [ -f "$d/data/grafana.db" ]; then
  "$d/current/bin/grafana" cli --homepath "$d/current" --config "$d/conf/grafana.ini" \
    admin reset-admin-password --password-from-stdin <"$d/conf/admin_password" >"$d/logs/admin-password.out" 2>&1 ||
    { cat "$d/logs/admin-password.out"; tik_fail "cannot set Grafana's admin password (grafana cli admin reset-admin-password)"; }
fi
tik_daemon "$d/server.pid" "$d/logs/server.out" "$d/current/bin/grafana" server \
  --homepath "$d/current" --config "$d/conf/grafana.ini"
