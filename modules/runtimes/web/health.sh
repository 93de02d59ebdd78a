# The server tik started, not merely something answering on its port: the pid it
# recorded runs (an ended one not yet reaped does not), and the page served names
# this node. Cheap, as it runs at every health check: no process but one python
# without its site packages, speaking HTTP/1.0 over a socket.
pid=$(cat "$TIK_HOME/web.pid" 2>/dev/null) || exit 1
kill -0 "$pid" 2>/dev/null || exit 1
if [ -r "/proc/$pid/stat" ] && read -r stat <"/proc/$pid/stat"; then
  case "${stat##*) }" in
    Z*) exit 1 ;;
  esac
fi
python3 -S -c 'import socket, sys
host, port, want = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection((host, port), 2)
s.settimeout(2)
s.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
data = b""
while len(data) < 1 << 20:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
sys.exit(not head.startswith(b"HTTP/1.0 200") or want not in body)' \
  "$TIK_NODE_IP" "$TIK_PARAM_PORT" "$TIK_NODE_NAME ($TIK_ROLE)"
