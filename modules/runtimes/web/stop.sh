if [ -f "$TIK_HOME/web.pid" ]; then
  kill "$(cat "$TIK_HOME/web.pid")" 2>/dev/null || true
  rm -f "$TIK_HOME/web.pid"
fi
