//! tik-backend-gcs: state in Google Cloud Storage, through the official
//! `google-cloud-storage` crate. The protocol (journal objects, conditional snapshots,
//! leased locks) is `tik-backend-objects`'; this crate only says how GCS reads and writes.
//!
//! Conditions are generations: `ifGenerationMatch=0` creates only what is absent,
//! `ifGenerationMatch=G` writes only over generation `G`; both answer 412 otherwise.
//! Objects are written as one multipart upload each (they are small), which is also
//! where the fake-gcs-server emulator enforces the conditions.
//!
//! Credentials are Google's application default credentials. With
//! `STORAGE_EMULATOR_HOST` set (as other Google client libraries honour it) tik talks
//! to that emulator, without credentials.

use async_trait::async_trait;
use google_cloud_storage::client::{Storage, StorageControl};
use tik_backend_objects::{Condition, Object, ObjectStore, StoreError};
use tokio::sync::OnceCell;

/// What a `backend "gcs"` block (with `tik init --backend-config` and `TIK_BACKEND_*`)
/// says.
#[derive(Debug, Clone, Default)]
pub struct GcsSettings {
    pub bucket: String,
    /// The state is `PREFIX/default.tikstate`.
    pub prefix: String,
    /// Another endpoint than Google's (an emulator, a private one).
    pub endpoint: Option<String>,
}

pub struct GcsStore {
    client: Storage,
    control: OnceCell<Option<StorageControl>>,
    settings: GcsSettings,
    emulator: bool,
    base: String,
}

impl GcsStore {
    pub async fn connect(settings: GcsSettings) -> Result<GcsStore, StoreError> {
        let emulator_host = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.is_empty());
        let endpoint = settings.endpoint.clone().or_else(|| {
            emulator_host.as_ref().map(|h| {
                if h.starts_with("http://") || h.starts_with("https://") {
                    h.clone()
                } else {
                    format!("http://{h}")
                }
            })
        });
        let mut builder = Storage::builder();
        if let Some(e) = &endpoint {
            builder = builder.with_endpoint(e.clone());
        }
        if emulator_host.is_some() {
            builder = builder.with_credentials(
                google_cloud_auth::credentials::anonymous::Builder::new().build(),
            );
        }
        let client = builder.build().await.map_err(|e| {
            StoreError::failed(
                format!(
                    "cannot open gs://{}/{}: {e}",
                    settings.bucket, settings.prefix
                ),
                Some("tik uses Google's application default credentials: run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS".into()),
            )
        })?;
        let prefix = settings.prefix.trim_matches('/');
        let base = if prefix.is_empty() {
            "default.tikstate".to_string()
        } else {
            format!("{prefix}/default.tikstate")
        };
        Ok(GcsStore {
            client,
            control: OnceCell::new(),
            emulator: emulator_host.is_some(),
            settings,
            base,
        })
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.settings.bucket)
    }

    fn url(&self, name: &str) -> String {
        format!("gs://{}/{name}", self.settings.bucket)
    }

    fn failed(&self, what: &str, name: &str, e: google_cloud_storage::Error) -> StoreError {
        let bucket = &self.settings.bucket;
        let url = self.url(name);
        match e.http_status_code() {
            Some(412) => StoreError::Precondition,
            Some(404) => StoreError::failed(
                format!("cannot {what} {url}: the bucket {bucket} does not exist"),
                Some(format!(
                    "create the bucket {bucket} first (with object versioning on), or fix bucket = in the backend settings"
                )),
            ),
            Some(401) | Some(403) => StoreError::failed(
                format!("cannot {what} {url}: access denied ({e})"),
                Some("the credentials in use need storage.objects.get, .create and .delete on the state's objects (docs/state.md lists the role)".into()),
            ),
            _ if e.is_authentication() => StoreError::failed(
                format!("cannot {what} {url}: no usable Google credentials ({e})"),
                Some("run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS".into()),
            ),
            _ if e.is_connect() || e.is_io() || e.is_timeout() => StoreError::failed(
                format!("cannot {what} {url}: {e}"),
                Some(format!(
                    "tik could not reach Cloud Storage{}; check the network",
                    self.settings
                        .endpoint
                        .as_deref()
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default()
                )),
            ),
            _ => StoreError::failed(format!("cannot {what} {url}: {e}"), None),
        }
    }

    /// The control client deletes objects; it speaks gRPC, which the emulator does not.
    async fn control(&self) -> Option<&StorageControl> {
        self.control
            .get_or_init(|| async {
                if self.emulator {
                    return None;
                }
                let mut builder = StorageControl::builder();
                if let Some(e) = &self.settings.endpoint {
                    builder = builder.with_endpoint(e.clone());
                }
                builder.build().await.ok()
            })
            .await
            .as_ref()
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    fn describe(&self) -> String {
        self.url(&self.base)
    }

    fn base(&self) -> String {
        self.base.clone()
    }

    async fn get(&self, name: &str) -> Result<Option<Object>, StoreError> {
        let mut response = match self
            .client
            .read_object(self.bucket_path(), name)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.http_status_code() == Some(404) => return Ok(None),
            Err(e) => return Err(self.failed("read", name, e)),
        };
        let version = response.object().generation.to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.next().await {
            let chunk = chunk.map_err(|e| self.failed("read", name, e))?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Object {
            bytes,
            version,
            // Not among what a read tells; the lease file's own time stands in.
            modified: None,
        }))
    }

    async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut write =
            self.client
                .write_object(self.bucket_path(), name, bytes::Bytes::from(bytes));
        match condition {
            Condition::Absent => write = write.set_if_generation_match(0),
            Condition::Version(v) => {
                let generation: i64 = v.parse().map_err(|_| {
                    StoreError::failed(
                        format!("{v} is not a generation of {}", self.url(name)),
                        None,
                    )
                })?;
                write = write.set_if_generation_match(generation);
            }
            Condition::Any => {}
        }
        match write.send_buffered().await {
            Ok(object) => Ok(object.generation.to_string()),
            Err(e) => Err(self.failed("write", name, e)),
        }
    }

    async fn delete(&self, names: Vec<String>) -> Result<(), StoreError> {
        let Some(control) = self.control().await else {
            // On the emulator the folded journal objects stay: nothing reads them again.
            return Ok(());
        };
        for name in names {
            control
                .delete_object()
                .set_bucket(self.bucket_path())
                .set_object(name.clone())
                .send()
                .await
                .map_err(|e| self.failed("delete", &name, e))?;
        }
        Ok(())
    }
}
