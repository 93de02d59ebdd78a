//! tik-nodes: what tik runs on the nodes of a cluster, as the `tik` provider.
//!
//! A cluster's provider (local, aws) makes its nodes and says how to reach each
//! one (a [`tik_engine::connection::NodeConnection`]); this crate adds, through
//! `Provider::layer`, a session per node, a container where the cluster runs its
//! services in one, and the steps of each runtime's services (`runtime`), and runs
//! them over SSH or as local processes (`steps`). `nodes` reads a cluster's nodes
//! back from state for `tik status`, `tik exec` and `tik ssh`. The `tik` provider
//! keeps the engine's `tik_data`, which it hands to `tik_engine::builtin`.

pub mod nodes;
pub mod on_head;
pub mod runtime;
mod scaling;
pub mod steps;

use async_trait::async_trait;
use indexmap::IndexMap;
use runtime::{RuntimeDef, CONTAINER_TYPE, ENDPOINTS_TYPE, SCALING_TYPE, SESSION_TYPE, STEP_TYPE};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tik_engine::builtin::{DataProvider, DATA_TYPE};
use tik_engine::diag::{Diagnostics, Sources};
use tik_engine::eval::Marks;
use tik_engine::provider::{
    AttributeSchema, BlockCheck, BlockKind, ChangeRequest, Demand, ExpandError, ExpandRequest,
    Layer, LayerRequest, Provider, ProviderError, ReadRequest, ResourceSchema, ResourceSpec,
};
use tik_engine::state::ResourceState;
use tik_engine::value::{Map, Value};

/// The `tik` provider: `tik_data`, and the node steps of runtimes.
pub struct TikProvider {
    steps: Arc<steps::Runner>,
    /// The runtimes of the project loaded last (`Provider::load`).
    runtimes: Mutex<Arc<IndexMap<String, RuntimeDef>>>,
    /// That project's directory, whose files a controller on a head gets.
    root: Mutex<PathBuf>,
    /// What the command line says a controller on a head needs.
    bundle: Mutex<Option<on_head::Bundle>>,
}

impl TikProvider {
    /// `log_dir` keeps a log file per node of what its steps printed.
    pub fn new(log_dir: PathBuf) -> Self {
        TikProvider {
            steps: Arc::new(steps::Runner::new(log_dir)),
            runtimes: Mutex::new(Arc::new(IndexMap::new())),
            root: Mutex::new(PathBuf::new()),
            bundle: Mutex::new(None),
        }
    }

    /// Where tik's binary is, the state backend's settings and the environment that a
    /// controller on a head (`controller { on = "head" }`) runs with.
    pub fn set_bundle(&self, bundle: on_head::Bundle) {
        *self.bundle.lock().unwrap_or_else(|e| e.into_inner()) = Some(bundle);
    }

    /// The runtimes clusters can run: the shipped ones and the project's own.
    pub fn runtimes(&self) -> Arc<IndexMap<String, RuntimeDef>> {
        self.runtimes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for TikProvider {
    fn default() -> Self {
        TikProvider::new(PathBuf::from(".tik/logs"))
    }
}

static RUNNING: Value = Value::Bool(true);

#[async_trait]
impl Provider for TikProvider {
    fn name(&self) -> &'static str {
        "tik"
    }

    fn in_state_only(&self, type_name: &str) -> bool {
        type_name == DATA_TYPE
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
            "put",
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
        // A runtime's scaling commands: what the controller runs on the head.
        let mut scaling: Vec<AttributeSchema> = step_attrs
            .iter()
            .filter(|a| {
                ![
                    "service",
                    "step",
                    "script",
                    "after_hash",
                    "stop",
                    "health",
                    "health_timeout",
                    "put",
                ]
                .contains(a)
            })
            .map(|a| AttributeSchema::optional(a))
            .collect();
        scaling.extend(
            ["demand", "idle", "timeout", "host_key", "jump_host_key"]
                .into_iter()
                .map(AttributeSchema::optional),
        );
        let scaling = ResourceSchema::new(SCALING_TYPE, scaling);
        let mut step = ResourceSchema::new(STEP_TYPE, step);
        // A step that failed on rerun may have stopped its service: in part.
        step.failed_update_taints = true;
        step.tainted_reason = Some("it failed at the last apply");
        step.update_reasons = Some(runtime::rerun_reasons);
        step.health = Some("running");
        vec![
            DataProvider::schema(),
            step,
            scaling,
            ResourceSchema::new(
                SESSION_TYPE,
                vec![
                    AttributeSchema::optional("node"),
                    AttributeSchema::optional("node_id"),
                    AttributeSchema::optional("connection"),
                    AttributeSchema::optional("wait"),
                    // A node behind the head: reached through it.
                    AttributeSchema::optional("jump"),
                    AttributeSchema::optional("jump_host_key"),
                    AttributeSchema::computed("host_key"),
                ],
            ),
            ResourceSchema::new(
                ENDPOINTS_TYPE,
                vec![
                    AttributeSchema::optional("runtime"),
                    AttributeSchema::optional("endpoints"),
                    AttributeSchema::optional("sensitive"),
                    AttributeSchema::optional("head_ip"),
                    AttributeSchema::optional("head_public_ip"),
                    AttributeSchema::computed("values"),
                ],
            ),
            ResourceSchema::new(
                CONTAINER_TYPE,
                vec![
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
            ),
        ]
    }

    fn expand(&self, _request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        Err("the tik provider has no workspaces or clusters".into())
    }

    fn load(&self, root: &Path, sources: &mut Sources) -> Diagnostics {
        *self.root.lock().unwrap_or_else(|e| e.into_inner()) = root.to_path_buf();
        let (defs, diags) = runtime::load_all(root, sources);
        *self.runtimes.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(defs);
        diags
    }

    fn check_block(&self, block: &BlockCheck<'_>) -> Diagnostics {
        if block.kind != BlockKind::Cluster {
            return Diagnostics::default();
        }
        let site = runtime::Site {
            file: block.file,
            span: block.span.clone(),
            body: block.body,
            what: block.what,
        };
        runtime::check_names(&self.runtimes(), &site)
    }

    fn layer(&self, request: &LayerRequest<'_>) -> Result<Option<Layer>, Diagnostics> {
        let nodes = runtime::nodes_of(request.resources.iter().copied());
        let site = runtime::Site {
            file: request.file,
            span: request.span.clone(),
            body: request.body,
            what: request.what,
        };
        // What the block as a whole is wrong in points at it.
        let at_block = |d: Diagnostics| {
            Diagnostics(
                d.0.into_iter()
                    .map(|d| d.at(request.file, request.span.clone()))
                    .collect(),
            )
        };
        on_head::written_by_hand(request.config, request.what).map_err(at_block)?;
        let with_controller;
        let mut puts = Vec::new();
        let config = if on_head::asked(request.config) {
            let bundle = self
                .bundle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let root = self.root.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let label = tik_engine::scale::cluster_label(request.address);
            with_controller = on_head::with_controller(
                request.config,
                &label,
                bundle.as_ref(),
                &root,
                request.what,
            )
            .map_err(at_block)?;
            puts = with_controller.1;
            &with_controller.0
        } else {
            request.config
        };
        let mut added = runtime::expand(
            &self.runtimes(),
            request.cluster,
            (config, request.marks),
            &nodes,
            &site,
        )?;
        on_head::add_puts(&mut added.specs, &puts);
        let mut marks = Marks::default();
        marks.put(&["runtime"], added.endpoint_marks);
        Ok(Some(Layer {
            resources: added.specs,
            values: added
                .endpoints
                .into_iter()
                .map(|(rt, ep, value)| (vec!["runtime".into(), rt, "endpoint".into(), ep], value))
                .collect(),
            marks,
        }))
    }

    fn fill_value(&self, value: &Value, head: Option<&Map>, nodes: &[Option<&Map>]) -> Value {
        runtime::fill_endpoint(value, head, nodes)
    }

    async fn read(
        &self,
        type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let recorded = || items.iter().map(|i| i.attributes.clone()).collect();
        match type_name {
            CONTAINER_TYPE => Ok(self.steps.read_containers(recorded()).await),
            STEP_TYPE => {
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
            _ => Ok(DataProvider::read_recorded(items)),
        }
    }

    async fn demand(&self, resources: &[ResourceState]) -> Vec<Demand> {
        scaling::ask_all(&self.steps, resources).await
    }

    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        match change.type_name.as_str() {
            STEP_TYPE => self.steps.apply_step(&change).await,
            SESSION_TYPE => self.steps.apply_session(&change).await,
            CONTAINER_TYPE => self.steps.apply_container(&change).await,
            ENDPOINTS_TYPE if change.operation != tik_engine::provider::Operation::Delete => {
                Ok(runtime::fill_recorded_endpoints(change.planned))
            }
            // Recorded for the controller, with what reaches the head; runs nothing.
            SCALING_TYPE if change.operation != tik_engine::provider::Operation::Delete => {
                Ok(change.planned)
            }
            SCALING_TYPE => Ok(Map::new()),
            _ => Ok(DataProvider::apply_data(change)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tik_engine::addr::Address;
    use tik_engine::plan::{diff, Action};
    use tik_engine::state::{ResourceState, Status};
    use tik_engine::walk::Instance;

    static TRUE: Value = Value::Bool(true);

    fn step(config: &[(&str, Value)]) -> Instance {
        Instance {
            address: Address::default().name("step"),
            rel: Address::default(),
            type_name: STEP_TYPE.into(),
            provider: "tik".into(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            intra_deps: Vec::new(),
            dependencies: Vec::new(),
            sensitive: Vec::new(),
            lifecycle: Default::default(),
            refs: Vec::new(),
        }
    }

    fn recorded(attrs: &[(&str, Value)]) -> ResourceState {
        ResourceState {
            address: Address::default().name("step"),
            type_name: STEP_TYPE.into(),
            provider: "tik".into(),
            status: Status::Ready,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            sensitive_attributes: Vec::new(),
            dependencies: Vec::new(),
        }
    }

    /// A step's schema as the provider gives it.
    fn step_schema() -> ResourceSchema {
        TikProvider::default()
            .resource_types()
            .into_iter()
            .find(|s| s.type_name == STEP_TYPE)
            .expect("the tik provider has node steps")
    }

    /// An attribute newer than a record reads as its `absent_as` where the
    /// configuration sets it, and as absent where it does not.
    #[test]
    fn an_attribute_newer_than_the_record_is_taken_as_its_absent_value() {
        let schema = step_schema();
        let old = recorded(&[("script", Value::from("x"))]);
        let start = step(&[("script", Value::from("x")), ("running", TRUE.clone())]);
        assert_eq!(
            diff(&start, &schema, Some(&old), false).action,
            Action::NoOp
        );
        let install = step(&[("script", Value::from("x"))]);
        assert_eq!(
            diff(&install, &schema, Some(&old), false).action,
            Action::NoOp
        );
        // Read back as not running: the step runs again, and says why.
        let dead = recorded(&[
            ("script", Value::from("x")),
            ("running", Value::Bool(false)),
        ]);
        let change = diff(&start, &schema, Some(&dead), false);
        assert_eq!(change.action, Action::Update);
        assert_eq!(
            change.reasons,
            ["its service is not running: its health check failed when tik read the nodes"]
        );
    }

    #[test]
    fn a_step_that_failed_says_so_and_an_update_that_fails_taints_it() {
        let schema = step_schema();
        assert!(schema.failed_update_taints);
        let mut failed = recorded(&[("script", Value::from("x"))]);
        failed.status = Status::Tainted;
        let change = diff(
            &step(&[("script", Value::from("x"))]),
            &schema,
            Some(&failed),
            false,
        );
        assert_eq!(change.action, Action::Replace);
        assert_eq!(change.reasons, ["it failed at the last apply"]);
    }
}
