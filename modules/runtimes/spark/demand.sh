# How many more workers Spark's applications want: each one the master keeps
# WAITING (granted no executor yet: every worker's cores are taken) wants a worker.
# Printed as a whole number; a master that does not answer is an error, so the
# controller decides nothing from it.
python3 -S -c 'import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
print(sum(1 for a in s.get("activeapps", []) if a.get("state") == "WAITING"))' \
  "http://$TIK_HEAD_IP:$TIK_PARAM_MASTER_UI_PORT/json/"
