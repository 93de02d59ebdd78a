//! `tik` against AWS as a user runs it, with moto's server standing in for AWS.

mod common;
#[path = "../providers/aws/tests/moto/server.rs"]
mod moto_server;

use common::Project;
use moto_server::Moto;

fn config(endpoint_line: &str, workers: u32) -> String {
    format!(
        r#"workspace "lab" {{
  provider = "aws"
  region   = "us-east-1"
  {endpoint_line}
}}

cluster "etl" {{
  workspace = workspace.lab
  head {{
    image         = "ami-03cf127a"
    instance_type = "m5.large"
  }}
  workers "default" {{
    min = {workers}
    max = 10
  }}
}}

output "head_ip" {{
  value = cluster.etl.node.head.private_ip
}}
"#
    )
}

async fn terminate(endpoint: &str, id: &str) {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_ec2::Client::new(&conf)
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("terminate by hand");
}

#[test]
fn plan_apply_drift_and_destroy_on_aws() {
    let moto = Moto::start();
    let p = Project::new(&[(
        "main.tik.hcl",
        &config(&format!("endpoint = \"{}\"", moto.endpoint), 2),
    )]);
    let r = p.ok(&["plan", "--detailed-exitcode"], 2);
    assert!(
        r.stdout
            .contains("# workspace.lab.vpc will be created\n  + aws_vpc {"),
        "{}",
        r.out()
    );
    assert!(
        r.stdout
            .contains("Plan: 25 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Apply complete! Resources: 25 added"),
        "{}",
        r.out()
    );
    assert!(r.stdout.contains("head_ip = \"10.0.0."), "{}", r.out());
    p.ok(&["plan", "--detailed-exitcode"], 0);
    p.ok(&["drift"], 0);

    let state: serde_json::Value = serde_json::from_str(&p.read("tik.tikstate")).unwrap();
    let worker = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "cluster.etl.node.worker[\"default\"][1]")
        .unwrap()["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(terminate(&moto.endpoint, &worker));
    let r = p.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("# cluster.etl.node.worker[\"default\"][1] was deleted outside of tik"),
        "{}",
        r.out()
    );
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Resources: 1 added, 0 changed, 0 replaced, 0 destroyed."),
        "{}",
        r.out()
    );

    let r = p.ok(&["destroy", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Destroy complete! Resources: 25 destroyed."),
        "{}",
        r.out()
    );
}

#[test]
fn the_standard_endpoint_variable_is_honoured() {
    let moto = Moto::start();
    let p = Project::new(&[("main.tik.hcl", &config("", 0))]);
    let r = p.tik_env(
        &["apply", "--auto-approve"],
        &[("AWS_ENDPOINT_URL", &moto.endpoint)],
    );
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(r.stdout.contains("Resources: 23 added"), "{}", r.out());
    let r = p.tik_env(
        &["destroy", "--auto-approve"],
        &[("AWS_ENDPOINT_URL", &moto.endpoint)],
    );
    assert_eq!(r.code, 0, "{}", r.out());
}
