# The page: the title param arrives as $TIK_PARAM_TITLE, HTML-escaped here.
title=$(python3 -c 'import html, sys; print(html.escape(sys.argv[1]))' "$TIK_PARAM_TITLE") || exit 1
cat >"$TIK_HOME/web/index.html" <<PAGE
<!doctype html>
<title>$title</title>
<h1>$title</h1>
<p>$TIK_NODE_NAME ($TIK_ROLE) of cluster $TIK_CLUSTER at $TIK_NODE_IP</p>
PAGE
