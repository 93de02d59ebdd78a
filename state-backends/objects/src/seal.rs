//! State encrypted at rest, on any backend: AES-256-GCM (RustCrypto's `aes-gcm`) with a
//! key from an environment variable, or data keys from a key service (AWS KMS), around
//! the snapshot, its backups and every journal write.
//!
//! A snapshot is `SEALED_MAGIC`, then the data key's header (its length in two bytes:
//! empty for a key from the environment, the wrapped data key for KMS), a 12-byte
//! random nonce and the ciphertext. A journal
//! write is one line, `sealed HEX(nonce ciphertext)`, so a local journal stays
//! appendable line by line and a torn last line is still recognised as torn. Snapshot
//! and journal are sealed with different associated data, so one cannot pass for the
//! other.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key as AesKey, Nonce};
use tik_engine::state::{Backend, LockInfo, Locked, StateError, SEALED_MAGIC};

const SNAPSHOT: &[u8] = b"tik-state-snapshot";
const JOURNAL: &[u8] = b"tik-state-journal";
const RECORD: &[u8] = b"tik-state-record";
const LINE: &[u8] = b"sealed ";

/// Where the data keys that seal state come from: a key in an environment variable,
/// or a key service (AWS KMS) that hands out data keys and keeps the key that wraps
/// them.
pub trait DataKeys: Send + Sync {
    /// What the key is, for messages: "the key in $TIK_STATE_KEY".
    fn describe(&self) -> String;
    /// A data key to seal with, and what to store beside the sealed bytes so that
    /// `open_key` finds it again (empty for a key that needs nothing).
    fn seal_key(&self) -> Result<(Vec<u8>, [u8; 32]), StateError>;
    /// The data key that `header` stands for.
    fn open_key(&self, header: &[u8]) -> Result<[u8; 32], StateError>;
}

/// A key of 32 bytes, as 64 hex digits in an environment variable.
struct EnvKey {
    env: String,
    key: [u8; 32],
}

impl DataKeys for EnvKey {
    fn describe(&self) -> String {
        format!("the key in ${}", self.env)
    }
    fn seal_key(&self) -> Result<(Vec<u8>, [u8; 32]), StateError> {
        Ok((Vec::new(), self.key))
    }
    fn open_key(&self, header: &[u8]) -> Result<[u8; 32], StateError> {
        if header.is_empty() {
            Ok(self.key)
        } else {
            Err(StateError::new(format!(
                "this state was encrypted with a key service's data key, not with {}",
                self.describe()
            ))
            .help("set the encryption block this state was written with"))
        }
    }
}

/// The key that seals and opens state.
#[derive(Clone)]
pub struct Key {
    keys: std::sync::Arc<dyn DataKeys>,
}

impl Key {
    pub fn new(keys: std::sync::Arc<dyn DataKeys>) -> Key {
        Key { keys }
    }

    pub fn from_env(env: &str) -> Result<Key, StateError> {
        let value = std::env::var(env).unwrap_or_default();
        let value = value.trim();
        if value.is_empty() {
            return Err(StateError::new(format!(
                "the configuration encrypts state with the key in ${env}, which is not set"
            ))
            .help(format!(
                "set {env} to the team's state key (64 hex digits; a new one comes from openssl rand -hex 32)"
            )));
        }
        let key: [u8; 32] = unhex(value)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                StateError::new(format!(
                    "${env} is not a state key: it must be 32 bytes written as 64 hex digits"
                ))
                .help("make one with openssl rand -hex 32")
            })?;
        Ok(Key::new(std::sync::Arc::new(EnvKey {
            env: env.to_string(),
            key,
        })))
    }

    /// `header length (2 bytes), header, nonce (12), ciphertext`.
    fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, StateError> {
        let (header, key) = self.keys.seal_key()?;
        let cipher = Aes256Gcm::new(AesKey::<Aes256Gcm>::from_slice(&key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| StateError::new("cannot encrypt the state"))?;
        let len = u16::try_from(header.len())
            .map_err(|_| StateError::new("the key service's data key is too long"))?;
        let mut out = len.to_be_bytes().to_vec();
        out.extend(header);
        out.extend(nonce);
        out.extend(sealed);
        Ok(out)
    }

    fn open(&self, sealed: &[u8], aad: &[u8], what: &str) -> Result<Vec<u8>, StateError> {
        let wrong = || {
            StateError::new(format!(
                "cannot decrypt {what} with {}: it is another key, or the data was changed",
                self.keys.describe()
            ))
            .help("set the key this state was encrypted with; tik left the state as it is")
        };
        let (len, rest) = sealed.split_at_checked(2).ok_or_else(wrong)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (header, rest) = rest.split_at_checked(len).ok_or_else(wrong)?;
        let (nonce, body) = rest.split_at_checked(12).ok_or_else(wrong)?;
        let key = self.keys.open_key(header)?;
        Aes256Gcm::new(AesKey::<Aes256Gcm>::from_slice(&key))
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| wrong())
    }

    /// A snapshot as stored.
    pub fn seal_snapshot(&self, plain: &[u8]) -> Result<Vec<u8>, StateError> {
        let mut out = SEALED_MAGIC.to_vec();
        out.extend(self.seal(plain, SNAPSHOT)?);
        Ok(out)
    }

    /// A stored snapshot read back; refuses one that is not encrypted.
    pub fn open_snapshot(&self, stored: &[u8], what: &str) -> Result<Vec<u8>, StateError> {
        match stored.strip_prefix(SEALED_MAGIC) {
            Some(body) => self.open(body, SNAPSHOT, &format!("the state {what}")),
            None => Err(StateError::new(format!(
                "the state {what} is not encrypted, but the configuration asks for encryption"
            ))
            .help("run tik init --migrate-state to encrypt it")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A backend whose state is encrypted: what the engine reads and writes is plain
/// JSON, what the backend stores is sealed.
pub struct Sealed<B: Backend> {
    inner: B,
    key: Key,
}

impl<B: Backend> Sealed<B> {
    pub fn new(inner: B, key: Key) -> Self {
        Sealed { inner, key }
    }
}

impl<B: Backend> Backend for Sealed<B> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn advice(&self) -> Vec<String> {
        self.inner.advice()
    }

    fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        match self.inner.read_snapshot()? {
            Some(stored) => Ok(Some(self.key.open_snapshot(&stored, &self.describe())?)),
            None => Ok(None),
        }
    }

    fn write_snapshot(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.inner.write_snapshot(&self.key.seal_snapshot(bytes)?)
    }

    fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let Some(stored) = self.inner.read_journal()? else {
            return Ok(None);
        };
        let what = format!("the journal of {}", self.describe());
        let mut plain = Vec::new();
        let mut rest: &[u8] = &stored;
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                // A write cut short: left for the engine to recognise as torn.
                plain.extend_from_slice(rest.strip_prefix(LINE).unwrap_or(rest));
                break;
            };
            let (line, after) = rest.split_at(end);
            rest = &after[1..];
            let body = line.strip_prefix(LINE).ok_or_else(|| {
                StateError::new(format!(
                    "{what} is not encrypted, but the configuration asks for encryption"
                ))
                .help("run tik init --migrate-state to encrypt the state")
            })?;
            let sealed = std::str::from_utf8(body)
                .ok()
                .and_then(unhex)
                .ok_or_else(|| StateError::new(format!("{what} is damaged: a line is not hex")))?;
            plain.extend(self.key.open(&sealed, JOURNAL, &what)?);
        }
        Ok(Some(plain))
    }

    fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        let mut line = LINE.to_vec();
        line.extend(hex(&self.key.seal(bytes, JOURNAL)?).into_bytes());
        line.push(b'\n');
        self.inner.append_journal(&line)
    }

    fn lock(&self, info: &LockInfo) -> Result<Locked, StateError> {
        self.inner.lock(info)
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let what = format!("the record {name} of {}", self.describe());
        match self.inner.read_record(name)? {
            Some(stored) => Ok(Some(self.key.open(&stored, RECORD, &what)?)),
            None => Ok(None),
        }
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.inner
            .write_record(name, &self.key.seal(bytes, RECORD)?)
    }

    fn remove_record(&self, name: &str) -> Result<(), StateError> {
        self.inner.remove_record(name)
    }

    fn unlock(&self, id: &str) -> Result<(), StateError> {
        self.inner.unlock(id)
    }

    fn force_unlock(&self, id: &str, force: bool) -> Result<(), StateError> {
        self.inner.force_unlock(id, force)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tik_engine::state::{JournalEntry, MemoryBackend, StateStore};

    fn key(env: &str, hexkey: &str) -> Key {
        std::env::set_var(env, hexkey);
        Key::from_env(env).unwrap()
    }

    #[test]
    fn snapshot_and_journal_are_sealed_and_read_back() {
        let k = key("TIK_TEST_KEY_A", &"ab".repeat(32));
        let mem = MemoryBackend::default();
        let sealed = Sealed::new(&mem, k.clone());
        let mut store = StateStore::load(&sealed).unwrap();
        store
            .record(JournalEntry::Remove {
                address: tik_engine::addr::Address::new()
                    .name("tik_data")
                    .name("secret-name"),
            })
            .unwrap();
        let journal = mem.journal();
        assert!(
            journal.starts_with(b"sealed ")
                && !String::from_utf8_lossy(&journal).contains("secret-name")
        );
        assert_eq!(StateStore::load(&sealed).unwrap().state.serial.get(), 1);
        store.save().unwrap();
        let raw = mem.read_snapshot().unwrap().unwrap();
        assert!(raw.starts_with(SEALED_MAGIC));
        // Without the key: named as encrypted. With another: refused, nothing garbled.
        let err = StateStore::load(&mem).err().unwrap();
        assert!(err.message.contains("is encrypted"), "{err}");
        let other = Sealed::new(&mem, key("TIK_TEST_KEY_B", &"cd".repeat(32)));
        let err = StateStore::load(&other).err().unwrap();
        assert!(
            err.message.contains("cannot decrypt") && err.message.contains("TIK_TEST_KEY_B"),
            "{err}"
        );
        assert_eq!(mem.read_snapshot().unwrap().unwrap(), raw);
    }

    #[test]
    fn bad_keys_are_named() {
        std::env::remove_var("TIK_TEST_KEY_MISSING");
        let err = Key::from_env("TIK_TEST_KEY_MISSING").err().unwrap();
        assert!(
            err.message
                .contains("$TIK_TEST_KEY_MISSING, which is not set"),
            "{err}"
        );
        std::env::set_var("TIK_TEST_KEY_SHORT", "abcd");
        let err = Key::from_env("TIK_TEST_KEY_SHORT").err().unwrap();
        assert!(err.message.contains("64 hex digits"), "{err}");
    }
}
