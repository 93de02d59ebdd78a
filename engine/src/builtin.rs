//! The built-in `tik` provider: `tik_data`, which stores a value and has an id,
//! like Terraform's terraform_data; and the node steps of runtimes (`tik_session`,
//! `tik_container` where the cluster runs services in containers,
//! `tik_step`), which run through `steps::Runner`.

use crate::provider::{
    AttributeSchema, ChangeRequest, ExpandError, ExpandRequest, Operation, Provider, ProviderError,
    ReadRequest, ResourceSchema, ResourceSpec,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub struct TikProvider {
    steps: std::sync::Arc<crate::steps::Runner>,
}

impl TikProvider {
    /// `log_dir` keeps a log file per node of what its steps printed.
    pub fn new(log_dir: std::path::PathBuf) -> Self {
        TikProvider {
            steps: std::sync::Arc::new(crate::steps::Runner::new(log_dir)),
        }
    }
}

impl Default for TikProvider {
    fn default() -> Self {
        TikProvider::new(std::path::PathBuf::from(".tik/logs"))
    }
}

#[async_trait]
impl Provider for TikProvider {
    fn name(&self) -> &'static str {
        "tik"
    }

    fn in_state_only(&self, type_name: &str) -> bool {
        type_name == "tik_data"
    }

    fn resource_types(&self) -> Vec<ResourceSchema> {
        let step_attrs = [
            "node",
            "node_name",
            "role",
            "cluster",
            "runtime",
            "service",
            "step",
            "script",
            "env",
            "after_hash",
            "stop",
            "health",
            "health_timeout",
            "connection",
            "node_id",
            "node_ip",
            "node_public_ip",
            "head_ip",
            "head_public_ip",
            "container",
            "jump",
        ];
        let mut step: Vec<AttributeSchema> = step_attrs
            .iter()
            .map(|a| AttributeSchema::optional(a))
            .collect();
        // A start step's service is running: its health check passed when the
        // world was read. (Steps recorded before tik read it were taken as running.)
        step.push(AttributeSchema::optional("running").absent_as(&RUNNING));
        step.push(AttributeSchema::optional("host_key"));
        step.push(AttributeSchema::optional("jump_host_key"));
        step.push(AttributeSchema::computed("hash"));
        vec![
            ResourceSchema {
                type_name: "tik_data",
                attributes: vec![
                    AttributeSchema::optional("input"),
                    AttributeSchema::optional("triggers_replace").force_new(),
                    AttributeSchema::computed("id"),
                    AttributeSchema::computed("output").copy_of("input"),
                ],
            },
            ResourceSchema {
                type_name: crate::runtime::STEP_TYPE,
                attributes: step,
            },
            ResourceSchema {
                type_name: crate::runtime::SESSION_TYPE,
                attributes: vec![
                    AttributeSchema::optional("node"),
                    AttributeSchema::optional("node_id"),
                    AttributeSchema::optional("connection"),
                    AttributeSchema::optional("wait"),
                    // A node behind the head: reached through it.
                    AttributeSchema::optional("jump"),
                    AttributeSchema::optional("jump_host_key"),
                    AttributeSchema::computed("host_key"),
                ],
            },
            ResourceSchema {
                type_name: crate::runtime::CONTAINER_TYPE,
                attributes: vec![
                    AttributeSchema::optional("node"),
                    AttributeSchema::optional("node_name"),
                    AttributeSchema::optional("cluster"),
                    // Another image or engine is another container: made anew, and
                    // the node's steps run again in it.
                    AttributeSchema::optional("image").force_new(),
                    AttributeSchema::optional("engine").force_new(),
                    AttributeSchema::optional("options").force_new(),
                    AttributeSchema::optional("node_id").force_new(),
                    AttributeSchema::optional("connection"),
                    AttributeSchema::optional("host_key"),
                    AttributeSchema::optional("jump"),
                    AttributeSchema::optional("jump_host_key"),
                    AttributeSchema::computed("container"),
                ],
            },
        ]
    }

    fn expand(&self, _request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        Err("the tik provider has no workspaces or clusters".into())
    }

    async fn read(
        &self,
        type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let recorded = || items.iter().map(|i| i.attributes.clone()).collect();
        match type_name {
            crate::runtime::CONTAINER_TYPE => Ok(self.steps.read_containers(recorded()).await),
            crate::runtime::STEP_TYPE => {
                // A step whose run was interrupted did not run to its end (tik stops
                // what it left running): it runs again. A start step is read as its
                // service's health.
                let finished: Vec<Map> = items
                    .iter()
                    .filter(|i| !i.pending)
                    .map(|i| i.attributes.clone())
                    .collect();
                let mut read = self.steps.read_steps(finished).await.into_iter();
                Ok(items
                    .iter()
                    .map(|i| {
                        if i.pending {
                            None
                        } else {
                            read.next().flatten()
                        }
                    })
                    .collect())
            }
            // tik_data and sessions live only in state: what was recorded is what
            // exists, and an interrupted create (a session that never answered, a
            // tik_data without its id) recorded nothing yet.
            _ => Ok(items
                .iter()
                .map(|i| (!i.pending).then(|| i.attributes.clone()))
                .collect()),
        }
    }

    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        match change.type_name.as_str() {
            crate::runtime::STEP_TYPE => return self.steps.apply_step(&change).await,
            crate::runtime::SESSION_TYPE => return self.steps.apply_session(&change).await,
            crate::runtime::CONTAINER_TYPE => return self.steps.apply_container(&change).await,
            _ => {}
        }
        let mut attrs = change.planned;
        match change.operation {
            Operation::Delete => return Ok(Map::new()),
            Operation::Create => {
                attrs.insert(
                    "id".into(),
                    Value::String(new_id(&change.address.to_string(), &change.lineage)),
                );
            }
            Operation::Update => {
                let id = change
                    .prior
                    .as_ref()
                    .and_then(|p| p.get("id"))
                    .cloned()
                    .unwrap_or(Value::Null);
                attrs.insert("id".into(), id);
            }
        }
        let input = attrs.get("input").cloned().unwrap_or(Value::Null);
        attrs.insert("output".into(), input);
        Ok(attrs)
    }
}

static RUNNING: Value = Value::Bool(true);

/// A fresh id: unique per create, so a replaced tik_data gets a new one.
fn new_id(address: &str, lineage: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(address.as_bytes());
    h.update(lineage.as_bytes());
    h.update(now.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let d = h.finalize();
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A new random-enough identifier (for lineages and lock ids), without a crate for it.
pub fn new_uuid() -> String {
    new_id("uuid", "")
}
