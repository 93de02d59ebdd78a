# Healthy: the master lists this worker as ALIVE.
python3 -c 'import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1], timeout=3))
alive = [w for w in s.get("workers", []) if w.get("host") == sys.argv[2] and w.get("state") == "ALIVE"]
sys.exit(0 if alive else "the master does not list %s as an alive worker" % sys.argv[2])' \
  "http://$TIK_HEAD_IP:$TIK_PARAM_MASTER_UI_PORT/json/" "$TIK_NODE_IP"
