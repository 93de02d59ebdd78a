//! State encrypted with data keys from AWS KMS (envelope encryption): KMS makes a data
//! key under the configured KMS key, tik seals state with it (AES-256-GCM) and stores
//! the data key as KMS wrapped it beside the sealed bytes; only KMS can unwrap it, for
//! whoever may use that KMS key.

use std::collections::HashMap;
use std::sync::Mutex;
use tik_backend_objects::seal::DataKeys;
use tik_engine::state::StateError;

pub struct KmsKeys {
    key_id: String,
    client: aws_sdk_kms::Client,
    runtime: Option<tokio::runtime::Runtime>,
    /// The data key this run seals with: one per run, one KMS call.
    sealing: Mutex<Option<(Vec<u8>, [u8; 32])>>,
    /// Data keys unwrapped, by their wrapped bytes: one KMS call each.
    opened: Mutex<HashMap<Vec<u8>, [u8; 32]>>,
}

impl KmsKeys {
    pub fn new(key_id: &str, region: Option<String>) -> Result<KmsKeys, StateError> {
        let runtime = tik_backend_objects::worker("tik-kms")?;
        let client = tik_backend_objects::wait(runtime.handle(), async move {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(r) = region {
                loader = loader.region(aws_config::Region::new(r));
            }
            aws_sdk_kms::Client::new(&loader.load().await)
        })?;
        Ok(KmsKeys {
            key_id: key_id.to_string(),
            client,
            runtime: Some(runtime),
            sealing: Mutex::new(None),
            opened: Mutex::new(HashMap::new()),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, StateError> {
        match &self.runtime {
            Some(rt) => tik_backend_objects::wait(rt.handle(), f),
            None => Err(StateError::new("the KMS worker has stopped")),
        }
    }

    fn failed<E: std::error::Error + Send + Sync + 'static>(
        &self,
        what: &str,
        e: aws_sdk_kms::error::SdkError<E>,
    ) -> StateError {
        let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
        StateError::new(format!(
            "cannot {what} with the KMS key {}: {detail}",
            self.key_id
        ))
        .help("the credentials in use need kms:GenerateDataKey and kms:Decrypt on that key")
    }
}

impl Drop for KmsKeys {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

impl DataKeys for KmsKeys {
    fn describe(&self) -> String {
        format!("the KMS key {}", self.key_id)
    }

    fn seal_key(&self) -> Result<(Vec<u8>, [u8; 32]), StateError> {
        let mut sealing = self.sealing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = sealing.as_ref() {
            return Ok(k.clone());
        }
        let client = self.client.clone();
        let key_id = self.key_id.clone();
        let out = self
            .run(async move {
                client
                    .generate_data_key()
                    .key_id(key_id)
                    .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                    .send()
                    .await
            })?
            .map_err(|e| self.failed("make a data key", e))?;
        let wrapped = out.ciphertext_blob().map(|b| b.as_ref().to_vec());
        let plain = out.plaintext().and_then(|b| key32(b.as_ref()));
        let (Some(wrapped), Some(plain)) = (wrapped, plain) else {
            return Err(StateError::new(format!(
                "KMS answered no 32-byte data key for {}",
                self.key_id
            )));
        };
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(wrapped.clone(), plain);
        *sealing = Some((wrapped.clone(), plain));
        Ok((wrapped, plain))
    }

    fn open_key(&self, header: &[u8]) -> Result<[u8; 32], StateError> {
        if header.is_empty() {
            return Err(StateError::new(format!(
                "this state was encrypted with a key from the environment, not with {}",
                self.describe()
            ))
            .help("set the encryption block this state was written with"));
        }
        if let Some(k) = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(header)
        {
            return Ok(*k);
        }
        let client = self.client.clone();
        let key_id = self.key_id.clone();
        let blob = header.to_vec();
        let out = self
            .run(async move {
                client
                    .decrypt()
                    .key_id(key_id)
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
                    .send()
                    .await
            })?
            .map_err(|e| self.failed("unwrap the state's data key", e))?;
        let plain = out
            .plaintext()
            .and_then(|b| key32(b.as_ref()))
            .ok_or_else(|| StateError::new("KMS answered no 32-byte data key"))?;
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(header.to_vec(), plain);
        Ok(plain)
    }
}
