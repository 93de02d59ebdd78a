# Healthy: the head's dashboard lists this node ALIVE at its own address (as head or
# as worker). A raylet that registered under another address, or never did, fails:
# nodes sharing a machine share Ray's session directory, and a process that answers
# is not yet a node of the cluster.
python3 - "http://$TIK_HEAD_IP:$TIK_PARAM_DASHBOARD_PORT/api/v0/nodes?limit=10000" "$TIK_NODE_IP" "$TIK_ROLE" <<'PY'
import json, sys, urllib.request
url, ip, role = sys.argv[1:]
with urllib.request.urlopen(url, timeout=5) as r:
    nodes = json.load(r)["data"]["result"]["result"]
head = role == "head"
if any(n["node_ip"] == ip and n["state"] == "ALIVE" and n["is_head_node"] == head for n in nodes):
    print("%s node %s is alive" % (role, ip))
    sys.exit(0)
seen = ", ".join("%s (%s%s)" % (n["node_ip"], n["state"], ", head" if n["is_head_node"] else "") for n in nodes)
sys.exit("the cluster has no live %s node at %s; it has: %s" % (role, ip, seen or "none"))
PY
