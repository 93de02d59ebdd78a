# MinIO ships one binary, not an archive.
set -e
d="$TIK_HOME/minio"
url=${TIK_PARAM_URL:-"$TIK_PARAM_MIRROR/$TIK_PARAM_ARCH/archive/minio.$TIK_PARAM_VERSION"}
mkdir -p "$d/bin" "$d/data" "$d/logs" "$d/conf"
tik_fetch "$url" "${TIK_PARAM_CHECKSUM:-sums:$url.sha256sum}" "$d/bin/minio-$TIK_PARAM_VERSION"
chmod +x "$d/bin/minio-$TIK_PARAM_VERSION"
ln -sfn "minio-$TIK_PARAM_VERSION" "$d/bin/minio"
