//! The controller's questions to a runtime's `scaling` commands: how many more
//! workers the work wants, and which workers have nothing to do. Each runs on the
//! head within its timeout; what it prints is checked, never trusted.

use crate::runtime::SCALING_TYPE;
use crate::steps::Runner;
use std::sync::Arc;
use std::time::Duration;
use tik_engine::addr::Address;
use tik_engine::provider::Demand;
use tik_engine::state::ResourceState;
use tik_engine::value::Value;

/// Asks every scaling record among `resources`, all at once.
pub async fn ask_all(runner: &Arc<Runner>, resources: &[ResourceState]) -> Vec<Demand> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in resources
        .iter()
        .filter(|r| r.type_name == SCALING_TYPE)
        .enumerate()
    {
        let runner = runner.clone();
        let record = r.clone();
        let nodes = nodes_of(&record.address, resources);
        tasks.spawn(async move { (i, ask(&runner, &record, &nodes).await) });
    }
    let mut answers: Vec<(usize, Demand)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(answer) = done {
            answers.push(answer);
        }
    }
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, d)| d).collect()
}

/// The nodes of the record's cluster (`cluster.etl.scaling["x"]` is in
/// `cluster.etl`), by private address.
fn nodes_of(record: &Address, resources: &[ResourceState]) -> Vec<(String, Address)> {
    let cluster = tik_engine::provider::Demand::cluster_of(record);
    resources
        .iter()
        .filter(|r| r.address.starts_with(&cluster))
        .filter_map(|r| {
            let ip = r.attributes.get("private_ip")?.as_str()?;
            Some((ip.to_string(), r.address.clone()))
        })
        .collect()
}

async fn ask(runner: &Runner, record: &ResourceState, nodes: &[(String, Address)]) -> Demand {
    let a = &record.attributes;
    let limit = a
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| *t >= 1.0 && *t <= 3600.0)
        .map_or(Duration::from_secs(20), Duration::from_secs_f64);
    let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
    let more = match text("demand") {
        Some(script) => runner
            .ask(a, &script, limit)
            .await
            .and_then(|out| whole_number(&out)),
        None => Err("its record holds no demand command".into()),
    };
    let idle = match text("idle") {
        Some(script) => Some(
            runner
                .ask(a, &script, limit)
                .await
                .and_then(|out| idle_nodes(&out, nodes)),
        ),
        None => None,
    };
    Demand {
        source: record.address.clone(),
        more,
        idle,
    }
}

/// What a demand command printed, as a whole number of workers.
fn whole_number(out: &str) -> Result<u64, String> {
    let t = out.trim();
    t.parse::<u64>().map_err(|_| {
        let shown: String = t.chars().take(60).collect();
        format!(
            "printed {:?}, not a whole number of workers",
            shown.escape_debug().to_string()
        )
    })
}

/// What an idle command printed (a private address per line), as the nodes with
/// those addresses. An address of no node is left out (a node replaced since, that
/// the runtime still lists); a line that is no address is an error.
fn idle_nodes(out: &str, nodes: &[(String, Address)]) -> Result<Vec<Address>, String> {
    let mut idle = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.parse::<std::net::IpAddr>().is_err() {
            let shown: String = line.chars().take(60).collect();
            return Err(format!(
                "printed {:?}, not an address",
                shown.escape_debug().to_string()
            ));
        }
        if let Some((_, a)) = nodes.iter().find(|(ip, _)| ip == line) {
            idle.push(a.clone());
        }
    }
    Ok(idle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_before_they_count() {
        assert_eq!(whole_number(" 3\n"), Ok(3));
        for bad in ["", "three", "-1", "2.5", "1\n2", "\u{1b}[2J"] {
            let e = whole_number(bad).unwrap_err();
            assert!(e.contains("not a whole number"), "{bad:?}: {e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
        let w = Address::parse("cluster.etl.node.worker[\"default\"][0]").unwrap();
        let nodes = vec![("10.0.0.5".to_string(), w.clone())];
        assert_eq!(idle_nodes("10.0.0.5\n\n", &nodes), Ok(vec![w]));
        assert_eq!(idle_nodes("", &nodes), Ok(vec![]));
        assert_eq!(idle_nodes("10.0.0.9", &nodes), Ok(vec![]));
        assert!(idle_nodes("worker-1", &nodes)
            .unwrap_err()
            .contains("not an address"));
    }
}
