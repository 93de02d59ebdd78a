# MinIO ships one binary, not an archive.
set -e
d="$TIK_HOME/minio"
url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/$TIK_PARAM_ARCH/archive/minio.$TIK_PARAM_VERSION"}
sum=$TIK_PARAM_CHECKSUM
mkdir -p "$d/bin" "$d/data" "$d/logs" "$d/conf"
if [ -z "$sum" ]; then
  tik_get "$url.sha256sum" "$d/minio.sha256sum" || tik_fail "no checksum given and none published at $url.sha256sum: set the checksum param"
  sum="sha256:$(cut -d' ' -f1 <"$d/minio.sha256sum")"
  rm -f "$d/minio.sha256sum"
fi
tik_fetch "$url" "$sum" "$d/bin/minio-$TIK_PARAM_VERSION"
chmod +x "$d/bin/minio-$TIK_PARAM_VERSION"
ln -sfn "minio-$TIK_PARAM_VERSION" "$d/bin/minio"
