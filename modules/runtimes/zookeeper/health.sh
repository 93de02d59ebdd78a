# Healthy: the server answers and serves (`srvr` names its mode: standalone, leader
# or follower). A member of an ensemble that cannot serve because fewer than a
# majority of its servers run yet is healthy too, and says so: the ensemble's
# servers start one after another, and the first waits for the others.
python3 - "$TIK_NODE_IP" "$TIK_PARAM_CLIENT_PORT" "$TIK_HOME/zookeeper/conf/zoo.cfg" <<'PY'
import re, socket, sys

def ask(host, port, word):
    try:
        with socket.create_connection((host, port), 3) as s:
            s.sendall(word)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data.decode(errors="replace")
                data += chunk
    except OSError:
        return None

me, port, cfg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if ask(me, port, b"ruok") != "imok":
    sys.exit("zookeeper does not answer ruok on %s:%d" % (me, port))
mode = re.search(r"^Mode: (\w+)", ask(me, port, b"srvr") or "", re.M)
if mode:
    print("serving (%s)" % mode.group(1))
    sys.exit(0)
with open(cfg) as f:
    peers = re.findall(r"^server\.\d+=([^:]+):", f.read(), re.M)
up = sum(ask(p, port, b"ruok") == "imok" for p in peers)
if 2 * up <= len(peers):
    print("running, waiting for a quorum: %d of %d servers answer" % (up, len(peers)))
    sys.exit(0)
sys.exit("not serving although %d of %d servers answer: the ensemble has no leader (see %s)" % (up, len(peers), "zookeeper/logs/server.out"))
PY
