# The credentials, readable by the node's user only, for start to read.
set -e
d="$TIK_HOME/minio"
mkdir -p "$d/conf"
umask 077
{
  printf 'MINIO_ROOT_USER=%s\n' "$TIK_PARAM_ROOT_USER"
  printf 'MINIO_ROOT_PASSWORD=%s\n' "$TIK_PARAM_ROOT_PASSWORD"
} >"$d/conf/credentials"
