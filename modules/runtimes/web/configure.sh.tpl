cat >"$TIK_HOME/web/index.html" <<PAGE
<!doctype html>
<title>${title}</title>
<h1>${title}</h1>
<p>$TIK_NODE_NAME ($TIK_ROLE) of cluster $TIK_CLUSTER at $TIK_NODE_IP</p>
PAGE
