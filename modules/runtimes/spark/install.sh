# Spark under $TIK_HOME/spark/current, from Apache's archive or from PyPI.
set -e
V=$TIK_PARAM_VERSION
dir="$TIK_HOME/spark"
mkdir -p "$dir"
command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ] ||
  tik_fail "Spark needs Java 17 on the node: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
case "$TIK_PARAM_INSTALL_METHOD" in
  archive)
    url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/spark/spark-$V/spark-$V-bin-hadoop3.tgz"}
    tik_fetch "$url" "$TIK_PARAM_CHECKSUM" "$dir/downloads/spark-$V.tgz"
    tik_unpack "$dir/downloads/spark-$V.tgz" "$dir/spark-$V"
    home="$dir/spark-$V"
    ;;
  pip)
    pip() { tik_pip_install "$dir" "$TIK_PARAM_PYTHON" "$TIK_PARAM_PIP_INDEX" "$@"; }
    if [ -n "$TIK_PARAM_CHECKSUM" ]; then
      # pip's hash-checking mode, for pyspark alone: its jars carry what it needs.
      printf 'pyspark==%s --hash=sha256:%s\n' "$V" "${TIK_PARAM_CHECKSUM#sha256:}" >"$dir/requirements.txt"
      pip --no-deps -r "$dir/requirements.txt"
    fi
    # pyspark's own dependencies (py4j) for a driver in this venv.
    pip "pyspark==$V"
    home=$("$dir/venv/bin/python" -c 'import importlib.util, os
print(os.path.dirname(importlib.util.find_spec("pyspark").origin))')
    ;;
  *)
    tik_fail "install_method is \"$TIK_PARAM_INSTALL_METHOD\": it takes \"archive\" or \"pip\""
    ;;
esac
[ -x "$home/bin/spark-class" ] || tik_fail "$home has no bin/spark-class: not a Spark distribution"
ln -sfn "$home" "$dir/current"
mkdir -p "$dir/conf" "$dir/logs" "$dir/work"
# The distribution's conf/ (templates only) is this node's, so that spark-submit
# and spark-shell on it find the cluster without SPARK_CONF_DIR.
rm -rf "$home/conf" && ln -s "$dir/conf" "$home/conf"
echo "Spark $V in $home"
# spark-submit, spark-shell and pyspark on the PATH of `tik exec` and `tik ssh`.
mkdir -p "$TIK_HOME/profile.d"
printf '%s\n' 'export SPARK_HOME="$TIK_HOME/spark/current"' 'export PATH="$SPARK_HOME/bin:$PATH"' >"$TIK_HOME/profile.d/spark.sh"
