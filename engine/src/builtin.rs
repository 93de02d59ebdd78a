//! The engine's built-in `tik` provider: `tik_data`, which stores a value and has
//! an id, like Terraform's terraform_data. It lives in state alone. The binary
//! replaces it with the full `tik` provider of `tik-nodes` (node steps, sessions,
//! containers), which hands `tik_data` back to this one.

use crate::provider::{
    AttributeSchema, ChangeRequest, ExpandError, ExpandRequest, Operation, Provider, ProviderError,
    ReadRequest, ResourceSchema, ResourceSpec,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// The type of the only resource this provider has.
pub const DATA_TYPE: &str = "tik_data";

#[derive(Default)]
pub struct DataProvider;

impl DataProvider {
    pub fn schema() -> ResourceSchema {
        ResourceSchema::new(
            DATA_TYPE,
            vec![
                AttributeSchema::optional("input"),
                AttributeSchema::optional("triggers_replace").force_new(),
                AttributeSchema::computed("id"),
                AttributeSchema::computed("output").copy_of("input"),
            ],
        )
    }

    /// What exists is what state recorded; an interrupted create recorded nothing yet.
    pub fn read_recorded(items: &[ReadRequest]) -> Vec<Option<Map>> {
        items
            .iter()
            .map(|i| (!i.pending).then(|| i.attributes.clone()))
            .collect()
    }

    /// A create gets a fresh id, an update keeps it; `output` copies `input`.
    pub fn apply_data(change: ChangeRequest) -> Map {
        let mut attrs = change.planned;
        match change.operation {
            Operation::Delete => return Map::new(),
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
        attrs
    }
}

#[async_trait]
impl Provider for DataProvider {
    fn name(&self) -> &'static str {
        "tik"
    }

    fn in_state_only(&self, type_name: &str) -> bool {
        type_name == DATA_TYPE
    }

    fn resource_types(&self) -> Vec<ResourceSchema> {
        vec![DataProvider::schema()]
    }

    fn expand(&self, _request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        Err("the tik provider has no workspaces or clusters".into())
    }

    async fn read(
        &self,
        _type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        Ok(DataProvider::read_recorded(items))
    }

    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        Ok(DataProvider::apply_data(change))
    }
}

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
