# ZooKeeper's jars: Apache's release under $TIK_HOME/zookeeper/current, or the
# distribution's package. Either way $TIK_HOME/zookeeper/classpath says where they are.
set -e
tik_need_java
d="$TIK_HOME/zookeeper"
mkdir -p "$d"
case "$TIK_PARAM_INSTALL_METHOD" in
  archive)
    V=$TIK_PARAM_VERSION
    tik_install_archive zookeeper \
      "${TIK_PARAM_URL:-$TIK_PARAM_MIRROR/zookeeper/zookeeper-$V/apache-zookeeper-$V-bin.tar.gz}" \
      "$TIK_PARAM_CHECKSUM"
    # Its conf/ carries the logging configuration (logback, to the console).
    cp="$d/current/conf:$d/current/lib/*"
    ;;
  package)
    # Debian's and Ubuntu's: the jar names its dependencies; slf4j-simple logs
    # to the console, where the daemon's output file gets it.
    tik_apt_install zookeeper libslf4j-java
    jar=/usr/share/java/zookeeper.jar
    [ -f "$jar" ] || tik_fail "the zookeeper package has no $jar: use install_method = \"archive\""
    cp="$jar"
    [ ! -f /usr/share/java/slf4j-simple.jar ] || cp="$cp:/usr/share/java/slf4j-simple.jar"
    ;;
  *) tik_fail "install_method must be \"archive\" or \"package\", got \"$TIK_PARAM_INSTALL_METHOD\"" ;;
esac
printf '%s\n' "$cp" >"$d/classpath"
"$JAVA_HOME/bin/java" -cp "$cp" org.apache.zookeeper.version.VersionInfoMain 2>/dev/null ||
  "$JAVA_HOME/bin/java" -cp "$cp" org.apache.zookeeper.Version
