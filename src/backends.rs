//! Which state backend a project uses, and with what settings: the wiring between the
//! configuration's `backend` block and the backend crates.
//!
//! Settings come, each overriding the one before, from the `backend` block, from
//! `tik init --backend-config` (recorded in `.tik/backend.json`, for what a team keeps
//! out of git) and from `TIK_BACKEND_<NAME>` in the environment.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tik_backend_objects::seal::{Key, Sealed};
use tik_backend_objects::{ObjectBackend, DEFAULT_LEASE};
use tik_engine::config::Config;
use tik_engine::diag::{did_you_mean, Diagnostic};
use tik_engine::state::{Backend, StateError};

/// Settings each kind takes, the required ones first.
fn known(kind: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match kind {
        "local" => Some((&[], &["path"])),
        "s3" => Some((
            &["bucket", "key"],
            &["region", "endpoint", "profile", "kms_key_id", "lock_lease"],
        )),
        "gcs" => Some((&["bucket"], &["prefix", "endpoint", "lock_lease"])),
        _ => None,
    }
}

const KINDS: [&str; 3] = ["local", "s3", "gcs"];

/// A backend as settled: its kind and every setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    pub kind: String,
    pub settings: IndexMap<String, String>,
}

/// What `tik init` recorded: the backend it set up, and the settings given to it on its
/// command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub backend: Chosen,
    #[serde(default)]
    pub backend_config: IndexMap<String, String>,
    /// The encryption block's settings when the state was set up, if it is encrypted.
    #[serde(default)]
    pub encryption: Option<Encryption>,
}

/// What an `encryption` block says: `key_env = "NAME"` (a key in that environment
/// variable), or `kms_key_id = "..."` with an optional `region` (AWS KMS data keys).
pub type Encryption = IndexMap<String, String>;

/// The configuration's encryption settings, checked; errors point at the block.
pub fn encryption(config: &Config) -> Result<Option<Encryption>, Diagnostic> {
    let Some(block) = &config.encryption else {
        return Ok(None);
    };
    let here = |d: Diagnostic| d.at(block.location.file, Some(block.location.span.clone()));
    let all = ["key_env", "kms_key_id", "region"];
    let mut settings = Encryption::new();
    for (k, v) in &block.settings {
        if !all.contains(&k.as_str()) {
            return Err(here(
                Diagnostic::new(format!("the encryption block has no setting \"{k}\"")).help(
                    did_you_mean(k, all).unwrap_or_else(|| format!("it takes {}", all.join(", "))),
                ),
            ));
        }
        let Some(text) = v.as_str() else {
            return Err(here(Diagnostic::new(format!(
                "the encryption setting {k} must be a string"
            ))));
        };
        settings.insert(k.clone(), text.to_string());
    }
    match (settings.get("key_env"), settings.get("kms_key_id")) {
        (Some(env), None) => {
            if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(here(
                    Diagnostic::new(format!("key_env must name an environment variable, not {env:?}"))
                        .help("such as key_env = \"TIK_STATE_KEY\""),
                ));
            }
            if settings.contains_key("region") {
                return Err(here(Diagnostic::new("region goes with kms_key_id, not with key_env")));
            }
        }
        (None, Some(_)) => {}
        (Some(_), Some(_)) => {
            return Err(here(
                Diagnostic::new("the encryption block takes key_env or kms_key_id, not both")
                    .help("keep the one the state is to be encrypted with"),
            ))
        }
        (None, None) => {
            return Err(here(Diagnostic::new("the encryption block needs key_env or kms_key_id").help(
                "name the environment variable that holds the key: key_env = \"TIK_STATE_KEY\" (make a key with openssl rand -hex 32), or an AWS KMS key: kms_key_id = \"arn:aws:kms:...\"",
            )))
        }
    }
    Ok(Some(settings))
}

/// How the state is (to be) kept, for messages.
pub fn said(encryption: Option<&Encryption>) -> String {
    match encryption {
        None => "not encrypted".into(),
        Some(e) => match (e.get("key_env"), e.get("kms_key_id")) {
            (Some(env), _) => format!("encrypted with the key in ${env}"),
            (_, Some(id)) => format!("encrypted with data keys of the KMS key {id}"),
            _ => "encrypted".into(),
        },
    }
}

fn key(encryption: &Encryption) -> Result<Key, StateError> {
    match (encryption.get("key_env"), encryption.get("kms_key_id")) {
        (Some(env), _) => Key::from_env(env),
        (_, Some(id)) => Ok(Key::new(std::sync::Arc::new(
            tik_backend_s3::kms::KmsKeys::new(id, encryption.get("region").cloned())?,
        ))),
        _ => Err(StateError::new("the encryption settings name no key")),
    }
}

/// A view of `raw`: encrypted as `encryption` says, or as it is.
pub fn view<'a>(
    raw: &'a dyn Backend,
    encryption: Option<&Encryption>,
) -> Result<Box<dyn Backend + 'a>, StateError> {
    Ok(match encryption {
        Some(e) => Box::new(Sealed::new(raw, key(e)?)),
        None => Box::new(raw),
    })
}

/// The same, owning `raw`.
pub fn view_owned(
    raw: Box<dyn Backend>,
    encryption: Option<&Encryption>,
) -> Result<Box<dyn Backend>, StateError> {
    Ok(match encryption {
        Some(e) => Box::new(Sealed::new(raw, key(e)?)),
        None => raw,
    })
}

/// Seals a snapshot as the state would be stored (for `errored.tikstate`).
pub fn seal_snapshot(encryption: &Encryption, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
    key(encryption)?.seal_snapshot(bytes)
}

/// Opens a sealed snapshot (a file given to `tik state push`).
pub fn open_snapshot(
    encryption: &Encryption,
    bytes: &[u8],
    what: &str,
) -> Result<Vec<u8>, StateError> {
    key(encryption)?.open_snapshot(bytes, what)
}

pub fn record_path(dir: &Path) -> PathBuf {
    dir.join(".tik").join("backend.json")
}

pub fn read_record(dir: &Path) -> Result<Option<Recorded>, Diagnostic> {
    let path = record_path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Diagnostic::new(format!("{} is damaged: {e}", path.display()))
                .help("run tik init again (with its --backend-config settings) to write it anew")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Diagnostic::new(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

pub fn write_record(dir: &Path, record: &Recorded) -> Result<(), Diagnostic> {
    let path = record_path(dir);
    let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
    crate::project::write_private(&path, &bytes)
        .map_err(|e| Diagnostic::new(format!("cannot write {}: {e}", path.display())))
}

/// Reads `--backend-config` arguments: `K=V`, or a file of `K = "V"` lines.
pub fn parse_backend_config(args: &[String]) -> Result<IndexMap<String, String>, Diagnostic> {
    let mut out = IndexMap::new();
    for arg in args {
        if let Some((k, v)) = arg.split_once('=').filter(|(k, _)| !k.contains('/')) {
            out.insert(k.trim().to_string(), v.trim().to_string());
            continue;
        }
        let text = std::fs::read_to_string(arg).map_err(|e| {
            Diagnostic::new(format!(
                "--backend-config {arg}: not KEY=VALUE, and cannot read it as a file: {e}"
            ))
            .help("pass --backend-config bucket=NAME, or a file of bucket = \"NAME\" lines")
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Diagnostic::new(format!(
                    "{arg}:{}: expected KEY = \"VALUE\", found {line:?}",
                    i + 1
                )));
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            out.insert(k.trim().to_string(), v.to_string());
        }
    }
    Ok(out)
}

/// The backend the configuration asks for, with `extra` (from `tik init`) and the
/// environment laid over it. Errors point at the backend block.
pub fn choose(
    config: &Config,
    extra: &IndexMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Chosen, Diagnostic> {
    let (kind, mut settings, at) = match &config.backend {
        None => ("local".to_string(), IndexMap::new(), None),
        Some(b) => {
            let mut settings = IndexMap::new();
            for (k, v) in &b.settings {
                let text = match v {
                    tik_engine::value::Value::String(s) => s.clone(),
                    tik_engine::value::Value::Number(_) | tik_engine::value::Value::Bool(_) => {
                        v.to_string()
                    }
                    _ => {
                        return Err(Diagnostic::new(format!(
                            "the backend setting {k} must be a string"
                        ))
                        .at(b.location.file, Some(b.location.span.clone())))
                    }
                };
                settings.insert(k.clone(), text);
            }
            (b.kind.clone(), settings, Some(b.location.clone()))
        }
    };
    let here = |d: Diagnostic| match &at {
        Some(l) => d.at(l.file, Some(l.span.clone())),
        None => d,
    };
    let Some((required, optional)) = known(&kind) else {
        return Err(here(
            Diagnostic::new(format!("there is no \"{kind}\" state backend")).help(
                did_you_mean(&kind, KINDS)
                    .unwrap_or_else(|| format!("backends are {}", KINDS.join(", "))),
            ),
        ));
    };
    for (k, v) in extra {
        settings.insert(k.clone(), v.clone());
    }
    for k in required.iter().chain(optional) {
        if let Some(v) = env(&format!("TIK_BACKEND_{}", k.to_ascii_uppercase())) {
            settings.insert(k.to_string(), v);
        }
    }
    let all: Vec<&str> = required.iter().chain(optional).copied().collect();
    if let Some(bad) = settings.keys().find(|k| !all.contains(&k.as_str())) {
        return Err(here(
            Diagnostic::new(format!("the {kind} backend has no setting \"{bad}\"")).help(
                did_you_mean(bad, all.iter().copied())
                    .unwrap_or_else(|| format!("it takes {}", all.join(", "))),
            ),
        ));
    }
    if let Some(l) = settings.get("lock_lease") {
        parse_duration(l).map_err(|e| here(Diagnostic::new(format!("lock_lease: {e}"))))?;
    }
    Ok(Chosen { kind, settings })
}

impl Chosen {
    pub fn local_default() -> Chosen {
        Chosen {
            kind: "local".into(),
            settings: IndexMap::new(),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<String> {
        self.settings.get(k).filter(|v| !v.is_empty()).cloned()
    }

    /// Where the state is: two choices with the same place are the same state.
    pub fn place(&self, dir: &Path) -> String {
        match self.kind.as_str() {
            "s3" => format!(
                "s3://{}/{}",
                self.get("bucket").unwrap_or_default(),
                self.get("key").unwrap_or_default()
            ),
            "gcs" => {
                let prefix = self.get("prefix").unwrap_or_default();
                let prefix = prefix.trim_matches('/');
                let bucket = self.get("bucket").unwrap_or_default();
                if prefix.is_empty() {
                    format!("gs://{bucket}/default.tikstate")
                } else {
                    format!("gs://{bucket}/{prefix}/default.tikstate")
                }
            }
            _ => self.local_path(dir).display().to_string(),
        }
    }

    fn local_path(&self, dir: &Path) -> PathBuf {
        dir.join(self.get("path").unwrap_or_else(|| "tik.tikstate".into()))
    }

    fn lease(&self) -> Duration {
        self.get("lock_lease")
            .and_then(|l| parse_duration(&l).ok())
            .unwrap_or(DEFAULT_LEASE)
    }

    /// Opens the backend: for a remote one, connects its client (nothing is read yet).
    /// A required setting may come from `tik init` or the environment, so its absence
    /// is an error only here, where state is used (`tik validate` needs none).
    pub fn open(&self, dir: &Path) -> Result<Box<dyn Backend>, StateError> {
        let (required, _) = known(&self.kind).unwrap_or_default();
        if let Some(missing) = required.iter().find(|k| self.get(k).is_none()) {
            return Err(StateError::new(format!(
                "the {} backend needs {missing}",
                self.kind
            ))
            .help(format!(
                "set {missing} = \"...\" in the backend block, pass tik init --backend-config {missing}=..., or set TIK_BACKEND_{}",
                missing.to_ascii_uppercase()
            )));
        }
        match self.kind.as_str() {
            "s3" => {
                let settings = tik_backend_s3::S3Settings {
                    bucket: self.get("bucket").unwrap_or_default(),
                    key: self.get("key").unwrap_or_default(),
                    region: self.get("region"),
                    endpoint: self.get("endpoint"),
                    profile: self.get("profile"),
                    kms_key_id: self.get("kms_key_id"),
                };
                Ok(Box::new(ObjectBackend::open(self.lease(), move || {
                    tik_backend_s3::S3Store::connect(settings)
                })?))
            }
            "gcs" => {
                let settings = tik_backend_gcs::GcsSettings {
                    bucket: self.get("bucket").unwrap_or_default(),
                    prefix: self.get("prefix").unwrap_or_default(),
                    endpoint: self.get("endpoint"),
                };
                Ok(Box::new(ObjectBackend::open(self.lease(), move || {
                    tik_backend_gcs::GcsStore::connect(settings)
                })?))
            }
            _ => Ok(Box::new(tik_backend_local::LocalBackend::new(
                self.local_path(dir),
            ))),
        }
    }
}

/// `30s`, `5m`, `1h`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write 30s, 5m or 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{text:?} is not a duration; write 30s, 5m or 1h")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{text:?} is not a duration; write 30s, 5m or 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
