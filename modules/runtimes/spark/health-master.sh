# Healthy: the master's status page says ALIVE.
python3 -c 'import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1], timeout=3))
sys.exit(0 if s.get("status") == "ALIVE" else "master status: %s" % s.get("status"))' \
  "http://$TIK_NODE_IP:$TIK_PARAM_MASTER_UI_PORT/json/"
