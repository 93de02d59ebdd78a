//! tik-provider-local: workspaces and clusters on this machine, no cloud account needed.
//!
//! A workspace is a directory under the project's data directory (`.tik/local/`);
//! a node is a directory in it with a loopback address of its own (127.x.y.z) claimed
//! machine-wide under the temporary directory's `tik-local-addresses/`, and its attributes in `node.json`. `local_file` writes
//! a file. Everything is read back from disk, so changes made by hand show up as drift.

use async_trait::async_trait;
use serde_json::json;
use std::fs;
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use tik_engine::addr::Address;
use tik_engine::connection::{self, NodeConnection};
use tik_engine::provider::{
    AttributeSchema as A, BlockKind, ChangeRequest, ExpandError, ExpandRequest, Operation,
    Provider, ProviderError, ReadRequest, ResourceSchema, ResourceSpec, Schema, HALF_MADE,
};
use tik_engine::value::{Map, Value};

mod sshd;

pub struct LocalProvider {
    /// The project directory: relative `local_file` paths start here.
    project: PathBuf,
    /// Where workspaces and nodes live.
    data: PathBuf,
    /// Where address claims live: machine-wide, so two projects on one machine never
    /// share an address, and their services never compete for an address and port.
    claims: PathBuf,
    /// Whether this process has swept dead processes' drafts from `claims`: once is
    /// enough, rather than a scan of every claim per node made.
    swept: std::sync::Once,
}

/// How the name of a claim being written starts, before it is linked under its address.
const DRAFT: &str = ".draft-";

/// Node addresses come from 127.77.0.0/16, away from 127.0.0.1 and its services.
const DEFAULT_CIDR: &str = "127.77.0.0/16";

impl LocalProvider {
    pub fn new(project: PathBuf) -> Self {
        let data = project.join(".tik").join("local");
        let claims = std::env::temp_dir().join("tik-local-addresses");
        LocalProvider {
            project,
            data,
            claims,
            swept: std::sync::Once::new(),
        }
    }

    fn workspace_dir(&self, name: &str) -> Result<PathBuf, ProviderError> {
        Ok(self.data.join("workspaces").join(plain("workspace", name)?))
    }

    /// A node's directory. Its workspace, cluster and name must each be one plain path
    /// component, so that nothing a configuration holds makes a directory outside this
    /// project's `.tik/local` (a delete removes the directory, and first ends every
    /// process working in it).
    fn node_dir(&self, attrs: &Map) -> Result<PathBuf, ProviderError> {
        Ok(self
            .workspace_dir(str_attr(attrs, "workspace")?)?
            .join("clusters")
            .join(plain("cluster", str_attr(attrs, "cluster")?)?)
            .join(plain("node", str_attr(attrs, "name")?)?))
    }

    /// Removes a workspace's or node's directory all at once: it is first renamed
    /// into `.tik/local/trash/` (one atomic step), then removed there. Removed in
    /// place, a kill half-way could take its `node.json` and leave the rest: a
    /// directory no read finds and no record leads to. What a killed removal left
    /// in the trash goes with the next one.
    fn remove_dir(&self, dir: &Path) -> Result<(), ProviderError> {
        let trash = self.data.join("trash");
        fs::create_dir_all(&trash).map_err(io("create", &trash))?;
        // Another removal of this run may be under way in there: only earlier runs'
        // leftovers are swept.
        let ours = format!("{}-", std::process::id());
        for left in fs::read_dir(&trash).map_err(io("read", &trash))?.flatten() {
            if !left.file_name().to_string_lossy().starts_with(&ours) {
                remove_tree(&left.path())?;
            }
        }
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        static REMOVALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = REMOVALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let doomed = trash.join(format!("{ours}{unique:x}-{n}"));
        match fs::rename(dir, &doomed) {
            Ok(()) => remove_tree(&doomed),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", dir)(e)),
        }
    }

    fn claims(&self) -> PathBuf {
        self.claims.clone()
    }

    /// Who holds a claim: this project and the resource's address.
    fn claimant(&self, key: &str) -> String {
        format!("{}#{key}", self.project.display())
    }

    /// Claims a free loopback address in `cidr`, starting from one derived from `key`
    /// so a node tends to get the same address back. A claim is a file created with
    /// O_EXCL, so parallel creates never share one.
    fn claim_address(&self, cidr: &str, key: &str) -> Result<Ipv4Addr, ProviderError> {
        let key = self.claimant(key);
        let key = key.as_str();
        let (base, len) = parse_cidr(cidr).map_err(ProviderError::new)?;
        let size = 1u32 << (32 - len);
        if size < 4 {
            return Err(ProviderError::new(format!(
                "the range {cidr} is too small for nodes"
            )));
        }
        fs::create_dir_all(self.claims()).map_err(io("create", &self.claims()))?;
        let usable = size - 2;
        let start = fnv(key) % usable;
        // The claim is written whole into a file of this process first and then linked
        // under the address: a link, like O_EXCL, fails where the name exists (a symlink
        // too, which it never follows), and no claim is ever seen empty or half written.
        self.swept.call_once(|| self.sweep_drafts());
        let draft = self.claims().join(format!(
            "{DRAFT}{}-{:x}",
            std::process::id(),
            fnv(&format!("{key}{:?}", std::thread::current().id()))
        ));
        let _ = fs::remove_file(&draft);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&draft)
            .map_err(io("create", &draft))?;
        f.write_all(key.as_bytes()).map_err(io("write", &draft))?;
        drop(f);
        let claimed = (|| {
            for k in 0..usable {
                let ip = Ipv4Addr::from(base + 1 + (start + k) % usable);
                let claim = self.claims().join(ip.to_string());
                match fs::hard_link(&draft, &claim) {
                    Ok(()) => return Ok(ip),
                    // A claim of this very resource (re-created after a manual delete) is its own.
                    Err(e)
                        if e.kind() == ErrorKind::AlreadyExists
                            && fs::read_to_string(&claim).is_ok_and(|o| o == key) =>
                    {
                        return Ok(ip)
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io("create", &claim)(e)),
                }
            }
            Err(ProviderError {
                code: Some("AddressRangeFull".into()),
                message: format!("every address of {cidr} is taken"),
            })
        })();
        let _ = fs::remove_file(&draft);
        claimed
    }

    /// Removes the drafts of claims whose process is gone (killed between writing a
    /// draft and linking it).
    fn sweep_drafts(&self) {
        let Ok(entries) = fs::read_dir(self.claims()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(DRAFT))
                .and_then(|rest| rest.split('-').next());
            if let Some(pid) = pid {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// The address a resource claimed, found by its claim: for a node whose create was
    /// cut short before it recorded the address.
    fn claimed_by(&self, key: &str) -> Option<String> {
        let key = self.claimant(key);
        fs::read_dir(self.claims()).ok()?.flatten().find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.parse::<Ipv4Addr>().is_ok()
                && fs::read_to_string(e.path()).is_ok_and(|o| o == key))
            .then_some(name)
        })
    }

    /// What a create cut short before it wrote `node.json` left: its directory, its
    /// address claim, perhaps an sshd. Read back as half made, so the plan deletes it or
    /// makes it anew instead of leaving it behind.
    fn half_made_node(&self, item: &ReadRequest, dir: &Path) -> Option<Map> {
        let claimed = self.claimed_by(&item.address.to_string());
        if !dir.exists() && claimed.is_none() {
            return None;
        }
        let mut attrs = item.attributes.clone();
        attrs.insert("directory".into(), Value::String(dir.display().to_string()));
        if let Some(ip) = claimed {
            attrs.insert("private_ip".into(), Value::String(ip));
        }
        attrs.insert(HALF_MADE.into(), Value::Bool(true));
        Some(attrs)
    }

    fn release_address(&self, ip: &str, key: &str) {
        let key = self.claimant(key);
        let key = key.as_str();
        let claim = self.claims().join(ip);
        if fs::read_to_string(&claim).is_ok_and(|owner| owner == key) {
            let _ = fs::remove_file(claim);
        }
    }

    fn read_one(&self, type_name: &str, item: &ReadRequest) -> Result<Option<Map>, ProviderError> {
        match type_name {
            "local_workspace" => {
                let dir = self.workspace_dir(str_attr(&item.attributes, "name")?)?;
                match read_json(&dir.join("workspace.json"))? {
                    // Made, but killed before it wrote workspace.json.
                    None if item.pending && dir.exists() => {
                        let mut attrs = item.attributes.clone();
                        attrs.insert(HALF_MADE.into(), Value::Bool(true));
                        Ok(Some(attrs))
                    }
                    found => Ok(found),
                }
            }
            "local_node" => {
                let dir = self.node_dir(&item.attributes)?;
                match read_json(&dir.join("node.json"))? {
                    Some(attrs) => Ok(Some(attrs)),
                    None if item.pending => Ok(self.half_made_node(item, &dir)),
                    None => Ok(None),
                }
            }
            "local_file" => {
                let path = self.file_path(&item.attributes)?;
                match fs::read(&path) {
                    Ok(bytes) => {
                        let mut attrs = item.attributes.clone();
                        attrs.insert(
                            "content".into(),
                            Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                        );
                        attrs.insert("id".into(), Value::String(content_id(&bytes)));
                        Ok(Some(attrs))
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io("read", &path)(e)),
                }
            }
            other => Err(ProviderError::new(format!(
                "the local provider has no resource type {other}"
            ))),
        }
    }

    fn file_path(&self, attrs: &Map) -> Result<PathBuf, ProviderError> {
        Ok(self.project.join(str_attr(attrs, "path")?))
    }

    fn apply_workspace(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let name = str_attr(&change.planned, "name")?;
        let dir = self.workspace_dir(name)?;
        if change.operation == Operation::Delete {
            return self.remove_dir(&dir).map(|_| Map::new());
        }
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let mut attrs = change.planned.clone();
        attrs.insert(
            "id".into(),
            Value::String(format!("local-workspace-{name}")),
        );
        attrs.insert("directory".into(), Value::String(dir.display().to_string()));
        write_json(&dir.join("workspace.json"), &attrs)?;
        Ok(attrs)
    }

    fn apply_node(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let dir = self.node_dir(&change.planned)?;
        let key = change.address.to_string();
        match change.operation {
            Operation::Delete => {
                sshd::stop(&dir);
                sshd::end_processes(&dir);
                // The claim goes before the directory: killed in between, the node is
                // still there to be read and deleted again, and nothing is left that
                // no record leads to.
                let ip = change.planned.get("private_ip").and_then(Value::as_str);
                if let Some(ip) = ip.map(str::to_string).or_else(|| self.claimed_by(&key)) {
                    self.release_address(&ip, &key);
                }
                self.remove_dir(&dir)?;
                Ok(Map::new())
            }
            Operation::Create => {
                let ws_dir = self.workspace_dir(str_attr(&change.planned, "workspace")?)?;
                if !ws_dir.join("workspace.json").exists() {
                    return Err(ProviderError {
                        code: Some("WorkspaceNotFound".into()),
                        message: format!("workspace directory {} does not exist", ws_dir.display()),
                    });
                }
                // What ran on a node of this name whose directory was deleted by hand
                // still runs, at the address this one gets: it goes first.
                sshd::stop(&dir);
                sshd::end_processes(&dir);
                fs::create_dir_all(&dir).map_err(io("create", &dir))?;
                let cidr = change
                    .planned
                    .get("cidr")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_CIDR)
                    .to_string();
                let ip = self.claim_address(&cidr, &key)?;
                let mut attrs = change.planned.clone();
                // Unique per create: steps on a re-created node run again.
                let born = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                attrs.insert(
                    "id".into(),
                    Value::String(format!(
                        "local-node-{}-{:x}",
                        fnv_hex(&dir.display().to_string()),
                        born & 0xffff_ffff_ffff
                    )),
                );
                attrs.insert("private_ip".into(), Value::String(ip.to_string()));
                let public = attrs.get("public_address") != Some(&Value::Bool(false));
                attrs.insert(
                    "public_ip".into(),
                    if public {
                        Value::String(ip.to_string())
                    } else {
                        Value::Null
                    },
                );
                attrs.insert("directory".into(), Value::String(dir.display().to_string()));
                let home = dir.join("home").display().to_string();
                let connection = if attrs.get("transport").and_then(Value::as_str) == Some("ssh") {
                    match sshd::start(&dir, ip) {
                        Ok(ssh) => NodeConnection::ssh(ssh, home),
                        Err(e) => {
                            self.release_address(&ip.to_string(), &key);
                            return Err(e);
                        }
                    }
                } else {
                    NodeConnection::local(home)
                };
                attrs.insert(connection::ATTRIBUTE.into(), connection.to_value());
                if let Err(e) = write_json(&dir.join("node.json"), &attrs) {
                    sshd::stop(&dir);
                    self.release_address(&ip.to_string(), &key);
                    return Err(e);
                }
                Ok(attrs)
            }
            Operation::Update => {
                let mut attrs = change.prior.clone().unwrap_or_default();
                for (k, v) in &change.planned {
                    attrs.insert(k.clone(), v.clone());
                }
                write_json(&dir.join("node.json"), &attrs)?;
                Ok(attrs)
            }
        }
    }

    fn apply_file(&self, change: &ChangeRequest) -> Result<Map, ProviderError> {
        let path = self.file_path(&change.planned)?;
        if change.operation == Operation::Delete {
            return match fs::remove_file(&path) {
                Ok(()) => Ok(Map::new()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(Map::new()),
                Err(e) => Err(io("remove", &path)(e)),
            };
        }
        let content = str_attr(&change.planned, "content")?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        fs::write(&path, content).map_err(io("write", &path))?;
        let mut attrs = change.planned.clone();
        attrs.insert("id".into(), Value::String(content_id(content.as_bytes())));
        Ok(attrs)
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn resource_types(&self) -> Vec<ResourceSchema> {
        vec![
            ResourceSchema::new(
                "local_workspace",
                vec![
                    A::required("name").force_new(),
                    A::optional("cidr").force_new(),
                    A::optional("tags"),
                    A::computed("id"),
                    A::computed("directory"),
                ],
            ),
            ResourceSchema::new(
                "local_node",
                vec![
                    A::required("workspace").force_new(),
                    A::required("cluster").force_new(),
                    A::required("name").force_new(),
                    A::required("role").force_new(),
                    A::optional("pool").force_new(),
                    A::optional("index").force_new(),
                    A::optional("cidr").force_new(),
                    A::optional("instance_type").force_new(),
                    A::optional("disk_gb").force_new(),
                    A::optional("image").force_new(),
                    A::optional("labels"),
                    A::optional("tags"),
                    A::optional("transport").force_new(),
                    A::optional("public_address").force_new(),
                    A::computed("id"),
                    A::computed("private_ip"),
                    A::computed("public_ip"),
                    A::computed("directory"),
                    A::computed("connection"),
                ],
            ),
            ResourceSchema::new(
                "local_file",
                vec![
                    A::required("path").force_new(),
                    A::required("content"),
                    A::computed("id"),
                ],
            ),
        ]
    }

    fn block_schema(&self, kind: BlockKind) -> Schema {
        match kind {
            BlockKind::Workspace => Schema::default()
                .attr("transport")
                .attr("tags")
                .block(
                    "network",
                    Schema::default()
                        .attr("cidr")
                        .attr("mode")
                        .attr("allowed_ssh"),
                )
                .block(
                    "storage",
                    Schema::default()
                        .attr("managed")
                        .attr("bucket")
                        .attr("keep_on_destroy"),
                ),
            BlockKind::Cluster => {
                let node = Schema::default()
                    .attr("instance_type")
                    .attr("disk_gb")
                    .attr("image")
                    .attr("labels");
                Schema::default()
                    .attr("tags")
                    .block("head", node.clone())
                    .labeled_block("workers", node.attr("spot"))
            }
        }
    }

    fn expand(&self, request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        match request.kind {
            BlockKind::Workspace => expand_workspace(request),
            BlockKind::Cluster => expand_cluster(request),
        }
    }

    async fn read(
        &self,
        type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        items
            .iter()
            .map(|item| self.read_one(type_name, item))
            .collect()
    }

    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        match change.type_name.as_str() {
            "local_workspace" => self.apply_workspace(&change),
            "local_node" => self.apply_node(&change),
            "local_file" => self.apply_file(&change),
            other => Err(ProviderError::new(format!(
                "the local provider has no resource type {other}"
            ))),
        }
    }
}

fn expand_workspace(request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
    let c = request.config;
    if let Some(mode) = c
        .get("network")
        .and_then(|n| n.get("mode"))
        .and_then(Value::as_str)
    {
        if mode != "public-head" {
            return Err(ExpandError::at(&["network", "mode"], format!("network mode \"{mode}\" needs a cloud provider: on the local provider remove it (every node has a public address) or use \"public-head\" (only the head has one; workers are reached through it)")));
        }
    }
    if c.get("storage")
        .and_then(|s| s.get("managed"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(ExpandError::at(
            &["storage", "managed"],
            "the local provider has no managed storage; remove storage { managed = true }",
        ));
    }
    let cidr = c
        .get("network")
        .and_then(|n| n.get("cidr"))
        .cloned()
        .unwrap_or(Value::String(DEFAULT_CIDR.into()));
    if let Some(text) = cidr.as_str() {
        let at = &["network", "cidr"];
        let (base, _) = parse_cidr(text).map_err(|e| ExpandError::at(at, e))?;
        if Ipv4Addr::from(base).octets()[0] != 127 {
            return Err(ExpandError::at(at, format!("network cidr {text} is not on loopback: local nodes need a range inside 127.0.0.0/8, like {DEFAULT_CIDR}")));
        }
    }
    let mut config = Map::new();
    config.insert("name".into(), Value::String(request.name.to_string()));
    config.insert("cidr".into(), cidr);
    if let Some(tags) = c.get("tags") {
        config.insert("tags".into(), tags.clone());
    }
    Ok(vec![ResourceSpec::new(
        Address::new().name("directory"),
        "local_workspace",
        config,
    )])
}

fn node_config(
    workspace: &Value,
    cluster: &str,
    name: String,
    role: &str,
    settings: Option<&Value>,
) -> Result<Map, String> {
    let mut config = Map::new();
    let ws_name = workspace.get("name").cloned().unwrap_or(Value::Unknown);
    config.insert("workspace".into(), ws_name);
    config.insert("cluster".into(), Value::String(cluster.to_string()));
    config.insert("name".into(), Value::String(name));
    config.insert("role".into(), Value::String(role.to_string()));
    let cidr = workspace
        .get("network")
        .and_then(|n| n.get("cidr"))
        .cloned()
        .unwrap_or(Value::String(DEFAULT_CIDR.into()));
    config.insert("cidr".into(), cidr);
    config.insert("instance_type".into(), Value::String("local".into()));
    // In a public-head network only the head has a public address: tik reaches the
    // workers through it, as on a cloud.
    let mode = workspace.get("network").and_then(|n| n.get("mode"));
    if role != "head" && mode.and_then(Value::as_str) == Some("public-head") {
        config.insert("public_address".into(), Value::Bool(false));
    }
    match workspace.get("transport") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "local" || t == "ssh" => {
            config.insert("transport".into(), Value::String(t.clone()));
        }
        Some(Value::Unknown) => {
            config.insert("transport".into(), Value::Unknown);
        }
        Some(other) => {
            return Err(format!(
                "transport must be \"local\" (run node steps as local processes) or \"ssh\" (through an sshd per node), got {other}"
            ))
        }
    }
    if let Some(Value::Object(s)) = settings {
        for key in ["instance_type", "disk_gb", "image", "labels"] {
            if let Some(v) = s.get(key) {
                config.insert(key.into(), v.clone());
            }
        }
    }
    Ok(config)
}

/// The whole number `pool`'s `key` holds (`min`, `max`).
fn whole(
    settings: &Value,
    pool: &str,
    key: &str,
    default: Option<u64>,
) -> Result<u64, ExpandError> {
    let what = format!("workers \"{pool}\" {key}");
    let at = |message: String| ExpandError::at(&["workers", pool, key], message);
    match settings.get(key) {
        None | Some(Value::Null) => default.ok_or_else(|| at(format!("{what} is required"))),
        Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= 10_000.0 => Ok(*n as u64),
        Some(other) => Err(at(format!(
            "{what} must be a whole number from 0 to 10000, got {other}"
        ))),
    }
}

fn expand_cluster(request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
    let c = request.config;
    let workspace = c.get("workspace").cloned().unwrap_or(Value::Null);
    // Its nodes' sshds log in as you with a key of their own: of the ssh block only
    // the wait for a new node applies. (The container block is the engine's.)
    if let Some(Value::Object(ssh)) = c.get("ssh") {
        if let Some(k) = ssh.keys().find(|k| k.as_str() != "wait") {
            return Err(ExpandError::at(&["ssh", k], format!(
                "the local provider's nodes take no ssh.{k}: with transport = \"ssh\" each node's sshd lets you in with a key of its own; only ssh {{ wait = SECONDS }} applies"
            )));
        }
    }
    // Nodes need the workspace's directory; the cluster's reference to the workspace
    // already orders them after it, so no edge inside the expansion is needed.
    let head = node_config(
        &workspace,
        request.name,
        "head".into(),
        "head",
        c.get("head"),
    )?;
    let mut specs = vec![ResourceSpec::new(
        Address::new().name("node").name("head"),
        "local_node",
        head,
    )];
    if let Some(Value::Object(pools)) = c.get("workers") {
        for (pool, settings) in pools {
            let min = whole(settings, pool, "min", None)?;
            let max = whole(settings, pool, "max", Some(min))?;
            if min > max {
                return Err(ExpandError::at(
                    &["workers", pool, "max"],
                    format!("workers \"{pool}\": min ({min}) is more than max ({max})"),
                ));
            }
            if settings.get("spot").and_then(Value::as_bool) == Some(true) {
                return Err(ExpandError::at(
                    &["workers", pool, "spot"],
                    format!("workers \"{pool}\": the local provider has no spot nodes; remove spot = true"),
                ));
            }
            // The size `tik scale` asked, which the engine keeps within the bounds.
            let size = whole(settings, pool, "size", Some(min))?.clamp(min, max);
            for i in 0..size {
                let mut config = node_config(
                    &workspace,
                    request.name,
                    format!("worker-{pool}-{i}"),
                    "worker",
                    Some(settings),
                )?;
                config.insert("pool".into(), Value::String(pool.clone()));
                config.insert("index".into(), Value::Number(i as f64));
                let path = Address::new()
                    .name("node")
                    .name("worker")
                    .key(pool.clone())
                    .index(i);
                specs.push(ResourceSpec::new(path, "local_node", config));
            }
        }
    }
    Ok(specs)
}

/// `value` when it is one plain path component: not empty, `.` or `..`, and without
/// a separator.
fn plain<'v>(what: &str, value: &'v str) -> Result<&'v str, ProviderError> {
    if value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\', '\0']) {
        return Err(ProviderError::new(format!(
            "the {what} name {value:?} is not a plain name: the local provider makes no directory for it"
        )));
    }
    Ok(value)
}

fn str_attr<'m>(attrs: &'m Map, key: &str) -> Result<&'m str, ProviderError> {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::new(format!("the attribute {key} must be a string")))
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl Fn(std::io::Error) -> ProviderError + 'p {
    move |e| ProviderError {
        code: Some(format!("{:?}", e.kind())),
        message: format!("cannot {what} {}: {e}", path.display()),
    }
}

fn read_json(path: &Path) -> Result<Option<Map>, ProviderError> {
    match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(j) => match Value::from_json(&j) {
                Value::Object(m) => Ok(Some(m)),
                _ => Err(ProviderError::new(format!(
                    "{} does not hold an object",
                    path.display()
                ))),
            },
            Err(e) => Err(ProviderError::new(format!(
                "{} is damaged: {e}",
                path.display()
            ))),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

fn write_json(path: &Path, attrs: &Map) -> Result<(), ProviderError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(&json!(Value::Object(attrs.clone()).to_json()))
        .unwrap_or_default();
    fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("write", path))
}

fn remove_tree(dir: &Path) -> Result<(), ProviderError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", dir)(e)),
    }
}

fn parse_cidr(text: &str) -> Result<(u32, u32), String> {
    let (ip, len) = text
        .split_once('/')
        .ok_or_else(|| format!("\"{text}\" is not a CIDR range like {DEFAULT_CIDR}"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("\"{text}\" is not an IPv4 range like {DEFAULT_CIDR}"))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("\"{text}\" has a bad prefix length"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((u32::from(ip) & mask, len))
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn fnv_hex(text: &str) -> String {
    format!("{:08x}", fnv(text))
}

fn content_id(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_claims_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = LocalProvider::new(dir.path().to_path_buf());
        p.claims = dir.path().join("claims");
        let p = std::sync::Arc::new(p);
        // A /27 has 30 usable addresses: 30 claimers from 6 threads fill it exactly.
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..5)
                        .map(|i| {
                            p.claim_address("127.88.0.0/27", &format!("n{t}-{i}"))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 30);
        let full = p
            .claim_address("127.88.0.0/27", "one-too-many")
            .unwrap_err();
        assert_eq!(full.code.as_deref(), Some("AddressRangeFull"));
        // The same resource asking again gets its own address back.
        assert!(all.contains(&p.claim_address("127.88.0.0/27", "n0-0").unwrap()));
    }

    /// A symlink put where a claim would go is never written through: the claim is
    /// linked into place whole, and a name that exists (a symlink too) is taken.
    #[test]
    fn claims_never_write_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = LocalProvider::new(dir.path().to_path_buf());
        p.claims = dir.path().join("claims");
        fs::create_dir_all(&p.claims).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep me").unwrap();
        // A /29 has 6 usable addresses: all but one are symlinks to the victim.
        for last in 1..=5 {
            std::os::unix::fs::symlink(&victim, p.claims.join(format!("127.88.1.{last}"))).unwrap();
        }
        let ip = p.claim_address("127.88.1.0/29", "node").unwrap();
        assert_eq!(ip.to_string(), "127.88.1.6");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(
            fs::read_to_string(p.claims.join("127.88.1.6")).unwrap(),
            p.claimant("node")
        );
        let left: Vec<_> = fs::read_dir(&p.claims)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(DRAFT))
            .collect();
        assert!(left.is_empty(), "drafts left: {left:?}");
    }

    /// Whatever a node's attributes hold, its directory is inside the project's data.
    #[test]
    fn node_directories_never_leave_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalProvider::new(dir.path().to_path_buf());
        let node = |ws: &str, cluster: &str, name: &str| {
            let attrs: Map = [("workspace", ws), ("cluster", cluster), ("name", name)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::from(v)))
                .collect();
            p.node_dir(&attrs)
        };
        assert!(node("w", "c", "worker-default-0")
            .unwrap()
            .starts_with(dir.path().join(".tik/local/workspaces/w/clusters/c")));
        for (ws, cluster, name) in [
            ("w", "c", "../../../../victim/x-0"),
            ("w", "c", ".."),
            ("w", "..", "n"),
            ("..", "c", "n"),
            ("w", "c", ""),
            ("/etc", "c", "n"),
            ("w", "c", "a\\b"),
        ] {
            let err = node(ws, cluster, name).unwrap_err();
            assert!(err.message.contains("not a plain name"), "{}", err.message);
        }
    }

    #[test]
    fn expansion_checks_what_the_local_provider_cannot_do() {
        let ws = |net: &str| -> Map {
            let body = format!("{{ \"provider\": \"local\", \"network\": {net} }}");
            match Value::from_json(&serde_json::from_str(&body).unwrap()) {
                Value::Object(m) => m,
                _ => unreachable!(),
            }
        };
        let expand = |config: &Map| {
            expand_workspace(&ExpandRequest {
                kind: BlockKind::Workspace,
                name: "w",
                config,
            })
            .map_err(|e| e.message)
        };
        assert!(expand(&ws("{ \"cidr\": \"10.0.0.0/16\" }"))
            .unwrap_err()
            .contains("is not on loopback"));
        assert!(expand(&ws("{ \"mode\": \"peering\" }"))
            .unwrap_err()
            .contains("needs a cloud provider"));
        assert_eq!(expand(&ws("{}")).unwrap()[0].path.to_string(), "directory");
    }

    #[test]
    fn in_a_public_head_network_only_the_head_has_a_public_address() {
        let cluster = |network: &str| {
            let body = format!(
                r#"{{ "workspace": {{ "name": "w", "network": {network} }},
                     "head": {{}}, "workers": {{ "p": {{ "min": 2 }} }} }}"#
            );
            let config = match Value::from_json(&serde_json::from_str(&body).unwrap()) {
                Value::Object(m) => m,
                _ => unreachable!(),
            };
            expand_cluster(&ExpandRequest {
                kind: BlockKind::Cluster,
                name: "c",
                config: &config,
            })
            .unwrap()
            .into_iter()
            .map(|s| (s.path.to_string(), s.config.get("public_address").cloned()))
            .collect::<Vec<_>>()
        };
        let private = cluster(r#"{ "mode": "public-head" }"#);
        assert_eq!(private.len(), 3);
        for (path, public) in private {
            let want = (path != "node.head").then_some(Value::Bool(false));
            assert_eq!(public, want, "{path}");
        }
        assert!(cluster("{}").iter().all(|(_, public)| public.is_none()));
    }
}
