//! How tik reaches a node to run its steps: the contract between the providers
//! that make nodes and `tik-nodes`, which runs the steps. A provider
//! puts a [`NodeConnection`] in its node's `connection` attribute with
//! [`NodeConnection::to_value`]; the steps read it back with
//! [`NodeConnection::from_value`]. A node without one runs no steps.
//!
//! In state it is an object: `transport` (`"local"` or `"ssh"`), `home`, and for
//! SSH `host`, `port`, `user` and one of `key_file` or `private_key`.

use crate::value::{Map, Value};
use serde::{Deserialize, Serialize};

/// The attribute of a node that holds its connection.
pub const ATTRIBUTE: &str = "connection";

/// Where a node's steps run when its provider names no home.
pub const DEFAULT_HOME: &str = "/tmp/tik";

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConnection {
    pub transport: Transport,
    /// The directory the node's steps run in and keep their files under: absolute,
    /// or (over SSH) relative to the login's home.
    pub home: String,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum Transport {
    /// The steps run as processes of the machine that runs tik.
    Local,
    /// The steps run over SSH, one multiplexed connection per node.
    Ssh(Ssh),
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Ssh {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<Identity>,
}

/// The key tik logs in with; none: ssh's own (an agent, `~/.ssh`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum Identity {
    /// A private key file on the machine running tik.
    File(String),
    /// The private key itself (a key tik made for the cluster), kept in state.
    Key(String),
}

impl std::fmt::Debug for Identity {
    /// Never prints a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::File(path) => write!(f, "key file {path}"),
            Identity::Key(_) => f.write_str("a private key"),
        }
    }
}

impl std::fmt::Debug for NodeConnection {
    /// Never prints a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Local => write!(f, "local in {}", self.home),
            Transport::Ssh(s) => write!(f, "ssh {}@{}:{} in {}", s.user, s.host, s.port, self.home),
        }
    }
}

impl NodeConnection {
    pub fn local(home: impl Into<String>) -> Self {
        NodeConnection {
            transport: Transport::Local,
            home: home.into(),
        }
    }

    pub fn ssh(ssh: Ssh, home: impl Into<String>) -> Self {
        NodeConnection {
            transport: Transport::Ssh(ssh),
            home: home.into(),
        }
    }

    /// The `connection` attribute that records it.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        match &self.transport {
            Transport::Local => {
                m.insert("transport".into(), Value::from("local"));
            }
            Transport::Ssh(s) => {
                m.insert("transport".into(), Value::from("ssh"));
                m.insert("host".into(), Value::from(s.host.as_str()));
                m.insert("port".into(), Value::Number(f64::from(s.port)));
                m.insert("user".into(), Value::from(s.user.as_str()));
                match &s.identity {
                    Some(Identity::File(f)) => {
                        m.insert("key_file".into(), Value::from(f.as_str()));
                    }
                    Some(Identity::Key(k)) => {
                        m.insert("private_key".into(), Value::from(k.as_str()));
                    }
                    None => {}
                }
            }
        }
        m.insert("home".into(), Value::from(self.home.as_str()));
        Value::Object(m)
    }

    /// Reads a `connection` attribute. What it leaves out takes its default: the
    /// local transport, home `/tmp/tik`, port 22, user root; a given `private_key`
    /// wins over a `key_file`. A local home must be absolute (only a login knows
    /// its own home).
    pub fn from_value(value: &Value) -> Result<NodeConnection, String> {
        let c = value.as_object().ok_or("the connection is not an object")?;
        let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        let home = text("home").unwrap_or_else(|| DEFAULT_HOME.to_string());
        let transport = match text("transport").as_deref() {
            Some("local") | None if !home.starts_with('/') => {
                return Err(format!(
                    "the node's home {home:?} is not an absolute path, which a node reached without SSH needs"
                ))
            }
            Some("local") | None => Transport::Local,
            Some("ssh") => Transport::Ssh(Ssh::from_map(c)?),
            Some(other) => {
                return Err(format!(
                    "unknown transport \"{other}\": tik reaches nodes over \"ssh\" or \"local\""
                ))
            }
        };
        Ok(NodeConnection { transport, home })
    }
}

impl Ssh {
    /// The SSH part of a connection object (also a jump host's).
    pub fn from_map(c: &Map) -> Result<Ssh, String> {
        let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        let identity = match (text("private_key"), text("key_file")) {
            (Some(key), _) => Some(Identity::Key(key)),
            (None, Some(file)) => Some(Identity::File(file)),
            (None, None) => None,
        };
        Ok(Ssh {
            host: text("host").ok_or("the connection has no host")?,
            port: c
                .get("port")
                .and_then(Value::as_f64)
                .filter(|p| *p >= 1.0 && *p <= 65535.0)
                .map_or(22, |p| p as u16),
            user: text("user").unwrap_or_else(|| "root".into()),
            identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_reads_back_as_it_was_written() {
        let all = [
            NodeConnection::local("/srv/node-0/home"),
            NodeConnection::ssh(
                Ssh {
                    host: "10.0.1.5".into(),
                    port: 2222,
                    user: "ubuntu".into(),
                    identity: Some(Identity::Key("-----BEGIN KEY-----".into())),
                },
                "tik",
            ),
            NodeConnection::ssh(
                Ssh {
                    host: "127.0.0.1".into(),
                    port: 22,
                    user: "me".into(),
                    identity: Some(Identity::File("/k".into())),
                },
                "/home/me",
            ),
        ];
        for c in all {
            assert_eq!(NodeConnection::from_value(&c.to_value()).unwrap(), c);
        }
    }

    #[test]
    fn what_is_left_out_takes_its_default_and_what_cannot_work_is_refused() {
        let read = |json: &str| {
            NodeConnection::from_value(&Value::from_json(&serde_json::from_str(json).unwrap()))
        };
        assert_eq!(read("{}").unwrap(), NodeConnection::local(DEFAULT_HOME));
        let Transport::Ssh(s) = read(r#"{"transport": "ssh", "host": "h", "port": 0}"#)
            .unwrap()
            .transport
        else {
            panic!("ssh")
        };
        assert_eq!((s.port, s.user.as_str(), s.identity), (22, "root", None));
        assert!(read(r#"{"home": "rel"}"#)
            .unwrap_err()
            .contains("not an absolute path"));
        assert!(read(r#"{"transport": "ssh"}"#)
            .unwrap_err()
            .contains("no host"));
        assert!(read(r#"{"transport": "telnet"}"#)
            .unwrap_err()
            .contains("unknown transport"));
        // A key tik keeps is never printed.
        let c = NodeConnection::ssh(
            Ssh {
                host: "h".into(),
                port: 22,
                user: "u".into(),
                identity: Some(Identity::Key("SECRET".into())),
            },
            "tik",
        );
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
