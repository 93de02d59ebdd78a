# Healthy: the server answers `ruok` with `imok`.
python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)
s.sendall(b"ruok")
sys.exit(0 if s.recv(16) == b"imok" else "zookeeper did not answer imok")' "$TIK_NODE_IP" "$TIK_PARAM_CLIENT_PORT"
