# The workers with nothing to do: alive, and no core of theirs in use by an
# application. One address per line, as the workers registered (their node's).
python3 -S -c 'import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
for w in s.get("workers", []):
    if w.get("state") == "ALIVE" and w.get("coresused", 0) == 0:
        print(w["host"])' \
  "http://$TIK_HEAD_IP:$TIK_PARAM_MASTER_UI_PORT/json/"
