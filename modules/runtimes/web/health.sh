# The server tik started, not merely something answering on its port: the pid it
# recorded runs (an ended one not yet reaped does not), and the page served names
# this node.
pid=$(cat "$TIK_HOME/web.pid" 2>/dev/null) || exit 1
kill -0 "$pid" 2>/dev/null || exit 1
if [ -r "/proc/$pid/stat" ]; then
  case "$(cut -d')' -f2- "/proc/$pid/stat")" in
    " Z"*) exit 1 ;;
  esac
fi
python3 -c 'import sys, urllib.request
sys.exit(sys.argv[2].encode() not in urllib.request.urlopen(sys.argv[1], timeout=2).read())' \
  "http://$TIK_NODE_IP:$TIK_PARAM_PORT/" "$TIK_NODE_NAME ($TIK_ROLE)"
