//! `tik` against AWS as a user runs it, with moto's server standing in for AWS.

use crate::common::Project;
use crate::moto::Moto;

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

/// An EC2 client of moto's, for what a test does by hand.
async fn ec2(endpoint: &str) -> aws_sdk_ec2::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_ec2::Client::new(&conf)
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
        .block_on(moto.terminate(&worker));
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

#[test]
fn a_vpc_made_by_hand_is_imported_and_the_workspace_is_built_in_it() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(ec2(&moto.endpoint));
    let vpc = rt
        .block_on(client.create_vpc().cidr_block("10.0.0.0/16").send())
        .expect("a VPC made by hand")
        .vpc
        .and_then(|v| v.vpc_id)
        .unwrap();
    let p = Project::new(&[(
        "main.tik.hcl",
        &format!(
            "workspace \"lab\" {{\n  provider = \"aws\"\n  region   = \"us-east-1\"\n  endpoint = \"{}\"\n}}\n",
            moto.endpoint
        ),
    )]);
    // Mistakes first: each is refused, and state is left as it was.
    let r = p.ok(&["import", "workspace.lab.vpc", "vpc-0000000000000000a"], 1);
    assert!(
        r.stderr
            .contains("no aws_vpc with id vpc-0000000000000000a was found"),
        "{}",
        r.out()
    );
    let r = p.ok(&["import", "workspace.lab", &vpc], 1);
    assert!(
        r.stderr.contains("workspace.lab is not one object")
            && r.stderr.contains("workspace.lab.vpc"),
        "{}",
        r.out()
    );
    let r = p.ok(&["import", "workspace.lab.vcp", &vpc], 1);
    assert!(
        r.stderr
            .contains("the configuration has no object workspace.lab.vcp")
            && r.stderr.contains("did you mean \"workspace.lab.vpc\"?"),
        "{}",
        r.out()
    );
    assert!(p.ok(&["state", "list"], 0).stdout.trim().is_empty());

    let r = p.ok(&["import", "workspace.lab.vpc", &vpc], 0);
    assert!(
        r.stdout
            .starts_with(&format!("Imported aws_vpc {vpc} as workspace.lab.vpc.\n")),
        "{}",
        r.out()
    );
    let r = p.ok(&["import", "workspace.lab.vpc", &vpc], 1);
    assert!(
        r.stderr.contains("workspace.lab.vpc is in state already"),
        "{}",
        r.out()
    );
    // The plan builds the rest in that VPC and makes no other.
    let plan = p.ok(&["plan"], 0).stdout;
    // It gains tik's tags, by which a later refresh finds it.
    assert!(
        plan.contains("# workspace.lab.vpc will be updated in place")
            && plan.contains("+ \"tik:workspace\" = \"lab\""),
        "{plan}"
    );
    let quoted = format!("\"{vpc}\"");
    assert!(
        plan.lines()
            .any(|l| l.contains("+ vpc_id") && l.ends_with(&quoted)),
        "{plan}"
    );
    p.ok(&["apply", "--auto-approve"], 0);
    let vpcs = rt
        .block_on(client.describe_vpcs().send())
        .unwrap()
        .vpcs
        .unwrap_or_default();
    let ours: Vec<&str> = vpcs
        .iter()
        .filter(|v| v.is_default != Some(true))
        .filter_map(|v| v.vpc_id.as_deref())
        .collect();
    assert_eq!(ours, [vpc.as_str()], "no second VPC");
    let subnets = rt
        .block_on(
            client
                .describe_subnets()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("vpc-id")
                        .values(&vpc)
                        .build(),
                )
                .send(),
        )
        .unwrap()
        .subnets
        .unwrap_or_default();
    assert!(!subnets.is_empty(), "the workspace's subnets are in it");
    p.ok(&["plan", "--detailed-exitcode"], 0);
}
