//! tik-backend-s3: state in Amazon S3 (or a store that speaks its API), through the
//! `aws-sdk-s3` crate. The protocol (journal objects, conditional snapshots, leased
//! locks) is `tik-backend-objects`'; this crate only says how S3 reads and writes.
//!
//! Conditions: `If-None-Match: *` creates only what is absent, `If-Match: ETAG` writes
//! only over the version read. Both answer 412 `PreconditionFailed` otherwise.

pub mod kms;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use std::time::SystemTime;
use tik_backend_objects::{Condition, Object, ObjectStore, StoreError};

/// What a `backend "s3"` block (with `tik init --backend-config` and `TIK_BACKEND_*`)
/// says.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    pub key: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    pub kms_key_id: Option<String>,
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl S3Store {
    pub async fn connect(settings: S3Settings) -> Result<S3Store, StoreError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
            // 503 Slow Down, throttling and reset connections are retried with
            // exponential backoff and jitter.
            aws_config::retry::RetryConfig::standard().with_max_attempts(10),
        );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(StoreError::failed(
                format!(
                    "the s3 backend for s3://{}/{} has no region",
                    settings.bucket, settings.key
                ),
                Some("set region = \"...\" in the backend block, tik init --backend-config region=..., or AWS_REGION".into()),
            ));
        }
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            // Buckets by path, not by host name, where an endpoint is given (moto, MinIO).
            .force_path_style(settings.endpoint.is_some())
            .build();
        Ok(S3Store {
            client: aws_sdk_s3::Client::from_conf(conf),
            settings,
        })
    }

    fn url(&self, name: &str) -> String {
        format!("s3://{}/{name}", self.settings.bucket)
    }

    /// An SDK error as a user reads it: what failed, where, and what to do.
    fn failed<E, R>(&self, what: &str, name: &str, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let code = match &e {
            SdkError::ServiceError(s) => s.err().code().map(str::to_string),
            _ => None,
        };
        let bucket = &self.settings.bucket;
        let url = self.url(name);
        match code.as_deref() {
            Some("PreconditionFailed") | Some("ConditionalRequestConflict") => {
                StoreError::Precondition
            }
            Some("NoSuchBucket") => StoreError::failed(
                format!("cannot {what} {url}: the bucket {bucket} does not exist"),
                Some(format!("create the bucket {bucket} first (with versioning on), or fix bucket = in the backend settings")),
            ),
            Some("AccessDenied") | Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") | Some("ExpiredToken") => {
                let message = match &e {
                    SdkError::ServiceError(s) => s.err().message().unwrap_or("").to_string(),
                    _ => String::new(),
                };
                StoreError::failed(
                    format!("cannot {what} {url}: access denied ({}{})", code.as_deref().unwrap_or(""), if message.is_empty() { String::new() } else { format!(": {message}") }),
                    Some("the credentials in use need s3:GetObject, s3:PutObject and s3:DeleteObject on the state's keys (docs/state.md lists the policy)".into()),
                )
            }
            _ => {
                let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                let help = if detail.contains("credentials") {
                    Some("tik found no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or profile = in the backend settings".to_string())
                } else if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
                    Some(format!(
                        "tik could not reach S3{}; check the network and the endpoint",
                        self.settings
                            .endpoint
                            .as_deref()
                            .map(|e| format!(" at {e}"))
                            .unwrap_or_default()
                    ))
                } else {
                    None
                };
                StoreError::failed(format!("cannot {what} {url}: {detail}"), help)
            }
        }
    }
}

fn etag(e: Option<&str>) -> String {
    e.unwrap_or_default().to_string()
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.url(&self.settings.key)
    }

    fn base(&self) -> String {
        self.settings.key.clone()
    }

    async fn get(&self, name: &str) -> Result<Option<Object>, StoreError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(name)
            .send()
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.failed("read", name, e)),
        };
        let version = etag(out.e_tag());
        let modified = out
            .last_modified()
            .and_then(|d| SystemTime::try_from(*d).ok());
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::failed(format!("cannot read {}: {e}", self.url(name)), None))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object {
            bytes,
            version,
            modified,
        }))
    }

    async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<String, StoreError> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(name)
            .content_type("application/octet-stream")
            .body(ByteStream::from(bytes));
        put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Version(v) => put.if_match(v),
            Condition::Any => put,
        };
        if let Some(kms) = &self.settings.kms_key_id {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        match put.send().await {
            Ok(out) => Ok(etag(out.e_tag())),
            Err(e) => Err(self.failed("write", name, e)),
        }
    }

    async fn delete(&self, names: Vec<String>) -> Result<(), StoreError> {
        for chunk in names.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|n| ObjectIdentifier::builder().key(n).build().ok())
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::failed(format!("cannot delete: {e}"), None))?;
            self.client
                .delete_objects()
                .bucket(&self.settings.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.failed("delete under", &self.settings.key, e))?;
        }
        Ok(())
    }

    async fn advice(&self) -> Vec<String> {
        match self
            .client
            .get_bucket_versioning()
            .bucket(&self.settings.bucket)
            .send()
            .await
        {
            Ok(v) if v.status().is_some_and(|s| s.as_str() == "Enabled") => Vec::new(),
            Ok(_) => vec![format!(
                "the bucket {} has versioning off: tik keeps only the one previous state ({}.backup); turn versioning on to keep every one (aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled)",
                self.settings.bucket, self.settings.key, self.settings.bucket
            )],
            Err(e) => vec![format!(
                "cannot tell whether the bucket {} keeps versions: {}",
                self.settings.bucket,
                match self.failed("read the versioning of", &self.settings.key, e) {
                    StoreError::Failed { message, .. } => message,
                    StoreError::Precondition => String::new(),
                }
            )],
        }
    }
}
