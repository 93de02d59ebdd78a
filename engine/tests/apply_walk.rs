//! The apply walker against a provider that records what it is asked, and a state
//! kept in memory: parallelism, replacement order, targets.

use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use tik_engine::apply::{apply, ApplyEvent, ApplyOptions};
use tik_engine::config::Config;
use tik_engine::plan::PlanOptions;
use tik_engine::provider::{
    AttributeSchema as A, BlockKind, ChangeRequest, ExpandError, ExpandRequest, Operation,
    Provider, ProviderError, Providers, ReadRequest, ResourceSchema, ResourceSpec, Schema,
};
use tik_engine::state::{Backend, MemoryBackend, StateStore};
use tik_engine::value::{Map, Value};
use tik_engine::walk::Inputs;

/// Records every call; the first `gate` creates wait for each other at a barrier, which
/// only opens if that many run at the same time.
struct Recorder {
    calls: Mutex<Vec<String>>,
    in_flight: Mutex<(usize, usize)>,
    barrier: tokio::sync::Barrier,
    gated: Mutex<usize>,
    gate: usize,
}

impl Recorder {
    fn new(gate: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            calls: Mutex::new(Vec::new()),
            in_flight: Mutex::new((0, 0)),
            barrier: tokio::sync::Barrier::new(gate.max(1)),
            gated: Mutex::new(0),
            gate,
        })
    }
}

struct Fake(Arc<Recorder>);

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn resource_types(&self) -> Vec<ResourceSchema> {
        vec![ResourceSchema::new(
            "fake_thing",
            vec![
                A::optional("name").force_new(),
                A::optional("value"),
                A::computed("id"),
            ],
        )]
    }
    fn block_schema(&self, kind: BlockKind) -> Schema {
        match kind {
            BlockKind::Workspace => Schema::default().attr("region"),
            BlockKind::Cluster => Schema::default(),
        }
    }
    /// A workspace is a `net` and a `sub` that takes the net's id.
    fn expand(&self, request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        let net = tik_engine::addr::Address::new().name("net");
        let mut config = Map::new();
        config.insert(
            "name".into(),
            request.config.get("region").cloned().unwrap_or(Value::Null),
        );
        Ok(vec![
            ResourceSpec::new(
                tik_engine::addr::Address::new().name("sub"),
                "fake_thing",
                Map::new(),
            )
            .with_ref("value", &net, "id"),
            ResourceSpec::new(net, "fake_thing", config),
        ])
    }
    async fn read(
        &self,
        _: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        Ok(items.iter().map(|i| Some(i.attributes.clone())).collect())
    }
    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        let r = &self.0;
        {
            let mut f = r.in_flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        let wait = change.operation == Operation::Create && {
            let mut g = r.gated.lock().unwrap();
            *g += 1;
            *g <= r.gate
        };
        if wait {
            r.barrier.wait().await;
        }
        if change.planned.get("value").and_then(Value::as_str) == Some("slow") {
            change.progress.note("waiting for the slow thing");
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        }
        tokio::task::yield_now().await;
        r.calls
            .lock()
            .unwrap()
            .push(format!("{:?} {}", change.operation, change.address).to_lowercase());
        r.in_flight.lock().unwrap().0 -= 1;
        let mut attrs = change.planned;
        let serial = r.calls.lock().unwrap().len();
        match (change.operation, change.prior) {
            (Operation::Update, Some(prior)) => {
                attrs.insert("id".into(), prior.get("id").cloned().unwrap_or(Value::Null))
            }
            _ => attrs.insert(
                "id".into(),
                Value::String(format!("id-{}-{serial}", change.address)),
            ),
        };
        Ok(attrs)
    }
}

struct Setup {
    dir: tempfile::TempDir,
    providers: Providers,
    recorder: Arc<Recorder>,
    backend: MemoryBackend,
}

fn setup(config: &str, gate: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tik.hcl"), config).unwrap();
    let recorder = Recorder::new(gate);
    let mut providers = Providers::new();
    providers.add(Arc::new(Fake(recorder.clone())));
    Setup {
        dir,
        providers,
        recorder,
        backend: MemoryBackend::default(),
    }
}

async fn run(s: &Setup, options: PlanOptions, parallelism: usize) -> Vec<String> {
    let opts = ApplyOptions {
        parallelism,
        ..Default::default()
    };
    run_with(s, options, opts).await.0
}

/// Plans and applies: the provider's calls, and apply's events.
async fn run_with(
    s: &Setup,
    options: PlanOptions,
    opts: ApplyOptions,
) -> (Vec<String>, Vec<ApplyEvent>) {
    let config = Config::load(s.dir.path()).map_err(|(_, d)| d).unwrap();
    let mut store = StateStore::load(&s.backend).unwrap();
    let plan = tik_engine::ops::make_plan(
        &config,
        &s.providers,
        &store.state,
        Inputs::default(),
        &options,
        true,
    )
    .await
    .unwrap();
    let mut events = Vec::new();
    let mut on_event = |e: ApplyEvent| events.push(e);
    let never = std::future::pending::<()>();
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        apply(
            &config,
            &s.providers,
            &mut store,
            &plan,
            &opts,
            never,
            &mut on_event,
        ),
    )
    .await
    .expect("apply finishes (a barrier that never opens means too little parallelism)")
    .unwrap();
    assert!(report.ok(), "{report:?}");
    (
        std::mem::take(&mut *s.recorder.calls.lock().unwrap()),
        events,
    )
}

fn things(n: usize) -> String {
    (0..n)
        .map(|i| format!("resource \"fake_thing\" \"t{i}\" {{\n  value = {i}\n}}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_changes_run_in_parallel_up_to_the_limit() {
    let s = setup(&things(12), 4);
    let calls = run(&s, PlanOptions::default(), 4).await;
    assert_eq!(calls.len(), 12);
    assert_eq!(
        s.recorder.in_flight.lock().unwrap().1,
        4,
        "never more than --parallelism at once"
    );
    let s = setup(&things(5), 1);
    run(&s, PlanOptions::default(), 1).await;
    assert_eq!(s.recorder.in_flight.lock().unwrap().1, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_before_destroy_creates_the_replacement_first() {
    let cfg = |name: &str, cbd: bool| {
        format!("resource \"fake_thing\" \"a\" {{\n  name = \"{name}\"\n  lifecycle {{\n    create_before_destroy = {cbd}\n  }}\n}}\n")
    };
    let s = setup(&cfg("one", true), 0);
    run(&s, PlanOptions::default(), 10).await;
    std::fs::write(s.dir.path().join("main.tik.hcl"), cfg("two", true)).unwrap();
    assert_eq!(
        run(&s, PlanOptions::default(), 10).await,
        ["create fake_thing.a", "delete fake_thing.a"]
    );
    std::fs::write(s.dir.path().join("main.tik.hcl"), cfg("three", false)).unwrap();
    assert_eq!(
        run(&s, PlanOptions::default(), 10).await,
        ["delete fake_thing.a", "create fake_thing.a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_plans_only_it_and_what_it_needs() {
    let cfg = "resource \"fake_thing\" \"base\" {}\nresource \"fake_thing\" \"app\" {\n  value = fake_thing.base.id\n}\nresource \"fake_thing\" \"other\" {}\n";
    let s = setup(cfg, 0);
    let target = PlanOptions {
        targets: vec![tik_engine::addr::Address::parse("fake_thing.app").unwrap()],
        ..Default::default()
    };
    let calls = run(&s, target, 10).await;
    assert_eq!(calls, ["create fake_thing.base", "create fake_thing.app"]);
    let calls = run(&s, PlanOptions::default(), 10).await;
    assert_eq!(calls, ["create fake_thing.other"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_excluded_is_kept_as_it_is_with_what_needs_it_missing() {
    let cfg = |count: usize, value: &str| {
        format!(
            "workspace \"w\" {{\n  provider = \"fake\"\n  region   = \"r\"\n}}\nresource \"fake_thing\" \"t\" {{\n  count = {count}\n  value = \"{value}\"\n}}\n"
        )
    };
    let s = setup(&cfg(3, "a"), 0);
    let excluding = |addresses: &[&str]| PlanOptions {
        exclude: addresses
            .iter()
            .map(|a| tik_engine::addr::Address::parse(a).unwrap())
            .collect(),
        ..Default::default()
    };
    // The workspace's net kept (it does not exist): its sub, which takes the net's
    // id, is not made either.
    let mut calls = run(&s, excluding(&["workspace.w.net"]), 10).await;
    calls.sort();
    assert_eq!(
        calls,
        [
            "create fake_thing.t[0]",
            "create fake_thing.t[1]",
            "create fake_thing.t[2]"
        ]
    );
    // Kept things that exist are not changed, nor deleted.
    std::fs::write(s.dir.path().join("main.tik.hcl"), cfg(1, "b")).unwrap();
    let mut calls = run(&s, excluding(&["fake_thing.t[2]", "workspace.w"]), 10).await;
    calls.sort();
    assert_eq!(calls, ["delete fake_thing.t[1]", "update fake_thing.t[0]"]);
    let mut calls = run(&s, PlanOptions::default(), 10).await;
    calls.sort();
    assert_eq!(
        calls,
        [
            "create workspace.w.net",
            "create workspace.w.sub",
            "delete fake_thing.t[2]"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expansion_takes_sibling_attributes_once_they_exist() {
    let cfg = |region: &str| {
        format!("workspace \"w\" {{\n  provider = \"fake\"\n  region   = \"{region}\"\n}}\n")
    };
    let s = setup(&cfg("r1"), 0);
    let calls = run(&s, PlanOptions::default(), 10).await;
    assert_eq!(calls, ["create workspace.w.net", "create workspace.w.sub"]);
    let state = String::from_utf8(s.backend.read_snapshot().unwrap().unwrap()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&state).unwrap();
    let res = json["resources"].as_array().unwrap();
    let net_id = res
        .iter()
        .find(|r| r["address"] == "workspace.w.net")
        .unwrap()["attributes"]["id"]
        .clone();
    let sub = res
        .iter()
        .find(|r| r["address"] == "workspace.w.sub")
        .unwrap();
    assert_eq!(sub["attributes"]["value"], net_id);
    assert_eq!(sub["dependencies"], serde_json::json!(["workspace.w.net"]));
    // Nothing changed: nothing to do, the sibling value resolves from state.
    assert!(run(&s, PlanOptions::default(), 10).await.is_empty());
    // A new net: the sub follows with the new id.
    std::fs::write(s.dir.path().join("main.tik.hcl"), cfg("r2")).unwrap();
    let calls = run(&s, PlanOptions::default(), 10).await;
    assert_eq!(
        calls,
        [
            "delete workspace.w.net",
            "create workspace.w.net",
            "update workspace.w.sub"
        ]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&s.backend.read_snapshot().unwrap().unwrap()).unwrap();
    let res = json["resources"].as_array().unwrap();
    let net_id = res
        .iter()
        .find(|r| r["address"] == "workspace.w.net")
        .unwrap()["attributes"]["id"]
        .clone();
    assert_eq!(
        res.iter()
            .find(|r| r["address"] == "workspace.w.sub")
            .unwrap()["attributes"]["value"],
        net_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_takes_a_while_is_reported_with_what_it_waits_for() {
    let cfg = "resource \"fake_thing\" \"slow\" {\n  value = \"slow\"\n}\nresource \"fake_thing\" \"quick\" {}\n";
    let s = setup(cfg, 0);
    let opts = ApplyOptions {
        parallelism: 10,
        progress_every: std::time::Duration::from_millis(100),
    };
    let (_, events) = run_with(&s, PlanOptions::default(), opts).await;
    let progress: Vec<(String, Option<String>, std::time::Duration)> = events
        .iter()
        .filter_map(|e| match e {
            ApplyEvent::Progress {
                address,
                elapsed,
                note,
                ..
            } => Some((address.to_string(), note.clone(), *elapsed)),
            _ => None,
        })
        .collect();
    assert!(
        progress.len() >= 2,
        "a 400 ms change is reported every 100 ms: {progress:?}"
    );
    for (address, note, elapsed) in &progress {
        assert_eq!(
            address, "fake_thing.slow",
            "only what still runs: {progress:?}"
        );
        assert_eq!(note.as_deref(), Some("waiting for the slow thing"));
        assert!(*elapsed >= std::time::Duration::from_millis(100));
    }
    // Reported while it ran: before it finished.
    let finished = events
        .iter()
        .position(|e| {
            matches!(e, ApplyEvent::Finished { address, .. } if address.to_string() == "fake_thing.slow")
        })
        .unwrap();
    let first = events
        .iter()
        .position(|e| matches!(e, ApplyEvent::Progress { .. }))
        .unwrap();
    assert!(first < finished);
}
