//! The AWS provider against moto's server, through the real aws-sdk-ec2 crate.

mod moto;
use moto::{config, Faults, Moto, World};
use tik_engine::plan::{Action, DriftKind};

fn count(plan: &tik_engine::plan::Plan, action: Action) -> usize {
    plan.changes.iter().filter(|c| c.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_and_cluster_are_created_read_back_and_destroyed() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 3, ""));
    let (plan, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    // vpc, igw, 3 subnets, 2 route tables, 2 routes, 3 associations, nat, s3 endpoint, sg, 3 rules,
    // 2 roles, 2 instance profiles, bucket, key, head, 3 workers
    assert_eq!(
        count(&plan, Action::Create),
        28,
        "{:#?}",
        plan.changes
            .iter()
            .map(|c| c.address.to_string())
            .collect::<Vec<_>>()
    );
    let vpc_id = w.attr("workspace.lab.vpc", "id");
    assert!(vpc_id.as_str().unwrap().starts_with("vpc-"));
    assert_eq!(w.attr("workspace.lab.subnet[\"public\"]", "vpc_id"), vpc_id);
    assert_eq!(
        w.attr("workspace.lab.subnet[\"private-2\"]", "availability_zone"),
        "us-east-1b"
    );
    assert_eq!(
        w.attr("workspace.lab.subnet[\"private-1\"]", "cidr"),
        "10.20.1.0/24"
    );
    let head_subnet = w.attr("cluster.etl.node.head", "subnet_id");
    assert_eq!(
        head_subnet,
        w.attr("workspace.lab.subnet[\"public\"]", "id")
    );
    assert_eq!(
        w.attr("cluster.etl.node.worker[\"default\"][1]", "subnet_id"),
        w.attr("workspace.lab.subnet[\"private-2\"]", "id")
    );
    assert!(w
        .attr("cluster.etl.key_pair", "private_key")
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));

    // What tik created carries its tags, and is named deterministically.
    let ec2 = moto.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:tik:workspace")
                .values("lab")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = vpcs.vpcs()[0].tags();
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(tag("Name"), "lab-vpc");
    assert_eq!(tag("tik:address"), "workspace.lab.vpc");
    assert!(!tag("tik:lineage").is_empty());

    // Nothing changed: nothing to do.
    let again = w.plan().await;
    assert!(again.drift.is_empty(), "{:#?}", again.drift);
    assert!(again.changes.is_empty(), "{:#?}", again.changes);

    let config_text = config(&moto.endpoint, 3, "");
    w.write(&config_text);
    let (plan, report) = w.destroy().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(count(&plan, Action::Delete), 28);
    let left = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:tik:workspace")
                .values("lab")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(left.vpcs().is_empty());
    let running = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(running
        .reservations()
        .iter()
        .all(|r| r.instances().is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_and_only_the_difference_is_fixed() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 2, ""));
    assert!(w.apply().await.1.ok());
    let ec2 = moto.ec2().await;
    // A worker terminated, a rule revoked and a tag changed, all by hand.
    let worker = w
        .attr("cluster.etl.node.worker[\"default\"][0]", "id")
        .as_str()
        .unwrap()
        .to_string();
    ec2.terminate_instances()
        .instance_ids(&worker)
        .send()
        .await
        .unwrap();
    let sg = w
        .attr("workspace.lab.security_group", "id")
        .as_str()
        .unwrap()
        .to_string();
    let rule = w
        .attr(
            "workspace.lab.security_group_rule[\"ssh-203.0.113.0/24\"]",
            "id",
        )
        .as_str()
        .unwrap()
        .to_string();
    ec2.revoke_security_group_ingress()
        .group_id(&sg)
        .security_group_rule_ids(&rule)
        .send()
        .await
        .unwrap();
    let vpc = w
        .attr("workspace.lab.vpc", "id")
        .as_str()
        .unwrap()
        .to_string();
    ec2.create_tags()
        .resources(&vpc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = w.plan().await;
    let drift: Vec<(String, DriftKind)> = plan
        .drift
        .iter()
        .map(|d| (d.address.to_string(), d.kind))
        .collect();
    assert!(
        drift.contains(&(
            "cluster.etl.node.worker[\"default\"][0]".into(),
            DriftKind::Deleted
        )),
        "{drift:?}"
    );
    assert!(
        drift.contains(&(
            "workspace.lab.security_group_rule[\"ssh-203.0.113.0/24\"]".into(),
            DriftKind::Deleted
        )),
        "{drift:?}"
    );
    let vpc_drift = plan
        .drift
        .iter()
        .find(|d| d.address.to_string() == "workspace.lab.vpc")
        .expect("the tag change is drift");
    assert_eq!(
        vpc_drift.after.as_ref().unwrap().attributes["tags"].get("team"),
        Some(&"someone-else".into())
    );
    assert_eq!(drift.len(), 3, "{drift:?}");
    let changes: Vec<(String, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect();
    assert_eq!(
        changes,
        [
            ("workspace.lab.vpc".to_string(), Action::Update),
            (
                "workspace.lab.security_group_rule[\"ssh-203.0.113.0/24\"]".to_string(),
                Action::Create
            ),
            (
                "cluster.etl.node.worker[\"default\"][0]".to_string(),
                Action::Create
            ),
        ]
    );
    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    assert!(w.plan().await.changes.is_empty());
    let tags = ec2
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(&vpc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().iter().all(|t| t.key() != Some("team")),
        "the hand-made tag is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_rule_is_replaced_alone() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 0, ""));
    assert!(w.apply().await.1.ok());
    let kept = w.attr("workspace.lab.security_group_rule[\"self\"]", "id");
    w.write(&config(&moto.endpoint, 0, "").replace("203.0.113.0/24", "198.51.100.0/24"));
    let plan = w.plan().await;
    let changes: Vec<(String, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect();
    assert_eq!(
        changes,
        [
            (
                "workspace.lab.security_group_rule[\"ssh-198.51.100.0/24\"]".to_string(),
                Action::Create
            ),
            (
                "workspace.lab.security_group_rule[\"ssh-203.0.113.0/24\"]".to_string(),
                Action::Delete
            ),
        ]
    );
    assert!(w.apply().await.1.ok());
    assert_eq!(
        w.attr("workspace.lab.security_group_rule[\"self\"]", "id"),
        kept
    );
    assert!(w.plan().await.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_name_the_resource_and_the_api_code() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 1, "").replace("ami-03cf127a", "ami-00000000"));
    let (_, report) = w.apply().await;
    assert!(!report.ok());
    let (addr, msg) = report
        .failures
        .iter()
        .find(|(a, _)| a == "cluster.etl.node.head")
        .expect("the head fails");
    assert_eq!(addr, "cluster.etl.node.head");
    assert!(
        msg.starts_with("InvalidAMIID.NotFound: RunInstances:"),
        "{msg}"
    );
    // The workspace, which does not need the AMI, was created all the same.
    assert!(w
        .attr("workspace.lab.vpc", "id")
        .as_str()
        .is_some_and(|id| id.starts_with("vpc-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_plan_of_100_workers_reads_each_type_once() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 100, ""));
    let (plan, report) = w
        .apply_with(tik_engine::plan::PlanOptions::default(), 20)
        .await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(count(&plan, Action::Create), 125);
    let before = w.aws.api_calls();
    let ops_before = w.aws.api_calls_by_operation();
    let again = w.plan().await;
    let calls = w.aws.api_calls() - before;
    let ops: Vec<(String, u64)> = w
        .aws
        .api_calls_by_operation()
        .into_iter()
        .map(|(k, v)| (k.clone(), v - ops_before.get(&k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    eprintln!("no-op plan calls: {ops:?}");
    assert!(
        again.changes.is_empty() && again.drift.is_empty(),
        "{:#?}",
        again.changes
    );
    // One call per type read, plus DescribeTags and DescribeAddresses for orphans.
    assert!(calls <= 16, "a no-op plan made {calls} API calls: {ops:?}");
    // Each Describe once; route tables serve route tables, routes and associations.
    assert!(
        ops.iter()
            .all(|(op, n)| *n == 1 || (op == "DescribeRouteTables" && *n == 3)),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_is_encrypted_and_kept_unless_the_configuration_says_otherwise() {
    let moto = Moto::start();
    let extra = "iam {\n    head_statements = [{ Effect = \"Allow\", Action = \"s3:ListAllMyBuckets\", Resource = \"*\" }]\n  }";
    let cfg = config(&moto.endpoint, 0, "").replacen(
        "  network {",
        &format!("  {extra}\n  network {{"),
        1,
    );
    let w = World::new(&cfg);
    assert!(w.apply().await.1.ok());
    let s3 = moto.s3().await;
    let enc = s3
        .get_bucket_encryption()
        .bucket("lab-data")
        .send()
        .await
        .expect("the bucket is encrypted");
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    // The head may use the bucket and what the configuration added; workers only the bucket.
    let head = w
        .attr("workspace.lab.role[\"head\"]", "policy")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        head.contains("arn:aws:s3:::lab-data/*") && head.contains("s3:ListAllMyBuckets"),
        "{head}"
    );
    let worker = w
        .attr("workspace.lab.role[\"worker\"]", "policy")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        worker.contains("arn:aws:s3:::lab-data") && !worker.contains("ListAllMyBuckets"),
        "{worker}"
    );
    assert!(w.attr("cluster.etl.node.head", "iam_instance_profile") == "lab-head-profile");

    // Destroying the workspace keeps the data: the bucket outlives it, forgotten by tik.
    let (plan, report) = w.destroy().await;
    assert!(report.ok(), "{report:?}");
    let kept: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.kept)
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        kept,
        ["workspace.lab.bucket"],
        "the plan says the bucket is kept"
    );
    assert_eq!((plan.summary().keep, report.done.keep), (1, 1));
    assert_eq!(plan.summary().destroy, plan.changes.len() - 1);
    assert!(
        s3.head_bucket().bucket("lab-data").send().await.is_ok(),
        "the bucket is kept"
    );
    assert!(w.state()["resources"].as_array().unwrap().is_empty());
    // ... and no longer carries tik's identity, so it is nobody's orphan.
    let tags = s3.get_bucket_tagging().bucket("lab-data").send().await;
    assert!(
        tags.as_ref().map_or(true, |t| t
            .tag_set()
            .iter()
            .all(|t| t.key() != "tik:lineage" && t.key() != "tik:address")),
        "{tags:?}"
    );

    // Told otherwise, tik deletes it.
    let w2 = World::new(
        &cfg.replace("keep_on_destroy = true", "keep_on_destroy = false")
            .replace("lab-data", "lab-scratch"),
    );
    assert!(w2.apply().await.1.ok());
    let (plan, report) = w2.destroy().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        (plan.summary().keep, report.done.keep),
        (0, 0),
        "nothing is kept"
    );
    assert!(
        s3.head_bucket().bucket("lab-scratch").send().await.is_err(),
        "the bucket is deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_min_adds_or_removes_only_the_difference_and_a_new_type_replaces() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 3, ""));
    assert!(w.apply().await.1.ok());
    let first = w.attr("cluster.etl.node.worker[\"default\"][0]", "id");
    w.write(&config(&moto.endpoint, 5, ""));
    let plan = w.plan().await;
    let changes: Vec<(String, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect();
    assert_eq!(
        changes,
        [
            (
                "cluster.etl.node.worker[\"default\"][3]".to_string(),
                Action::Create
            ),
            (
                "cluster.etl.node.worker[\"default\"][4]".to_string(),
                Action::Create
            ),
        ]
    );
    assert!(w.apply().await.1.ok());
    w.write(&config(&moto.endpoint, 2, ""));
    let plan = w.plan().await;
    assert_eq!(count(&plan, Action::Delete), 3);
    assert_eq!(plan.changes.len(), 3);
    assert!(w.apply().await.1.ok());
    assert_eq!(
        w.attr("cluster.etl.node.worker[\"default\"][0]", "id"),
        first,
        "kept workers are untouched"
    );

    // A new instance type cannot be changed in place: the node is replaced, with the reason.
    w.write(&config(&moto.endpoint, 2, "").replacen(
        "instance_type = \"m5.large\"\n    min",
        "instance_type = \"m5.xlarge\"\n    min",
        1,
    ));
    let plan = w.plan().await;
    let replaced: Vec<&tik_engine::plan::Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .collect();
    assert_eq!(replaced.len(), 2, "{:#?}", plan.changes);
    assert!(
        replaced[0]
            .reasons
            .contains(&"instance_type forces replacement".to_string()),
        "{:?}",
        replaced[0].reasons
    );
    assert!(w.apply().await.1.ok());
    assert!(w.plan().await.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_tags_and_encryption_changed_by_hand_are_drift_and_fixed() {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule, Tag, Tagging,
    };
    let moto = Moto::start();
    let cfg = config(&moto.endpoint, 0, "").replacen(
        "    keep_on_destroy = true",
        "    keep_on_destroy = true\n  }\n  tags = {\n    team = \"data\"",
        1,
    );
    let w = World::new(&cfg);
    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(w.attr("workspace.lab.bucket", "tags")["team"], "data");
    let s3 = moto.s3().await;
    // By hand: the team tag is changed (tik's own tags kept) and KMS replaces AES256.
    let mut tags: Vec<Tag> = s3
        .get_bucket_tagging()
        .bucket("lab-data")
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .filter(|t| t.key() != "team")
        .cloned()
        .collect();
    tags.push(Tag::builder().key("team").value("ml").build().unwrap());
    s3.put_bucket_tagging()
        .bucket("lab-data")
        .tagging(Tagging::builder().set_tag_set(Some(tags)).build().unwrap())
        .send()
        .await
        .unwrap();
    let kms = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::AwsKms)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    s3.put_bucket_encryption()
        .bucket("lab-data")
        .server_side_encryption_configuration(kms)
        .send()
        .await
        .unwrap();

    let plan = w.plan().await;
    let drift = plan
        .drift
        .iter()
        .find(|d| d.address.to_string() == "workspace.lab.bucket")
        .unwrap_or_else(|| panic!("no bucket drift in {:#?}", plan.drift));
    let changed = format!("{drift:?}");
    assert!(
        changed.contains("encryption") && changed.contains("tags"),
        "{changed}"
    );
    let fix = plan
        .changes
        .iter()
        .find(|c| c.address.to_string() == "workspace.lab.bucket")
        .unwrap();
    assert_eq!(fix.action, Action::Update, "{fix:#?}");

    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    let enc = s3
        .get_bucket_encryption()
        .bucket("lab-data")
        .send()
        .await
        .unwrap();
    assert_eq!(
        enc.server_side_encryption_configuration().unwrap().rules()[0]
            .apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm(),
        &ServerSideEncryption::Aes256
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket("lab-data")
        .send()
        .await
        .unwrap();
    assert!(tags
        .tag_set()
        .iter()
        .any(|t| t.key() == "team" && t.value() == "data"));
    assert!(tags.tag_set().iter().any(|t| t.key() == "tik:lineage"));
    assert!(w.plan().await.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_reported_then_adopted_or_destroyed_on_request() {
    use tik_engine::plan::{OrphanAction, PlanOptions};
    use tik_engine::state::{JournalEntry, StateStore};
    let moto = Moto::start();
    // The bucket takes tik's default name, the one the orphan search looks at.
    let cfg = config(&moto.endpoint, 2, "").replace("    bucket          = \"lab-data\"\n", "");
    let w = World::new(&cfg);
    assert!(w.apply().await.1.ok());
    let forget = |addr: &str| {
        let mut store = StateStore::load(&w.backend).unwrap();
        store
            .record(JournalEntry::Remove {
                address: tik_engine::addr::Address::parse(addr).unwrap(),
            })
            .unwrap();
        store.save().unwrap();
    };
    // State loses two records (as `tik state rm` would): the objects still exist.
    let worker = "cluster.etl.node.worker[\"default\"][1]";
    let worker_id = w.attr(worker, "id");
    forget(worker);
    forget("workspace.lab.subnet[\"private-2\"]");
    // IAM and S3 objects too: each service is searched.
    forget("workspace.lab.role[\"worker\"]");
    forget("workspace.lab.instance_profile[\"worker\"]");
    forget("workspace.lab.bucket");

    let plan = w.plan().await;
    let mut orphans: Vec<String> = plan.orphans.iter().map(|o| o.address.to_string()).collect();
    orphans.sort();
    assert_eq!(
        orphans,
        [
            "cluster.etl.node.worker[\"default\"][1]",
            "workspace.lab.bucket",
            "workspace.lab.instance_profile[\"worker\"]",
            "workspace.lab.role[\"worker\"]",
            "workspace.lab.subnet[\"private-2\"]"
        ]
    );
    let worker_orphan = plan
        .orphans
        .iter()
        .position(|o| o.address.to_string() == worker)
        .unwrap();
    assert_eq!(
        plan.orphans[worker_orphan].attributes["id"],
        tik_engine::value::Value::from(worker_id.as_str().unwrap())
    );

    // Adopted, the worker is back in state and nothing needs creating.
    let (plan, report) = w
        .apply_with(
            PlanOptions {
                orphans: OrphanAction::Adopt,
                ..Default::default()
            },
            10,
        )
        .await;
    assert!(report.ok(), "{report:?}");
    assert!(
        plan.changes.iter().all(|c| c.action != Action::Create),
        "{:#?}",
        plan.changes
    );
    assert_eq!(w.attr(worker, "id"), worker_id);
    let again = w.plan().await;
    assert!(
        again.orphans.is_empty() && again.changes.is_empty(),
        "{:#?} {:#?}",
        again.orphans,
        again.changes
    );

    // Destroyed on request: what the configuration still wants is replaced by a new one.
    forget(worker);
    let (plan, report) = w
        .apply_with(
            PlanOptions {
                orphans: OrphanAction::Destroy,
                ..Default::default()
            },
            10,
        )
        .await;
    assert!(report.ok(), "{report:?}");
    let change = plan
        .changes
        .iter()
        .find(|c| c.address.to_string() == worker)
        .unwrap();
    assert_eq!(change.action, Action::Replace);
    assert_ne!(w.attr(worker, "id"), worker_id);
    let ec2 = moto.ec2().await;
    let old = ec2
        .describe_instances()
        .instance_ids(worker_id.as_str().unwrap())
        .send()
        .await
        .unwrap();
    let state = old.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned();
    assert_eq!(
        state,
        Some(aws_sdk_ec2::types::InstanceStateName::Terminated)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peering_routes_both_ways_and_refuses_overlapping_ranges() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    // The working VPC the workspace peers with, with a route table of its own.
    let work = moto.vpc("10.50.0.0/16").await;
    let work_rt = ec2
        .create_route_table()
        .vpc_id(&work)
        .send()
        .await
        .unwrap()
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_string();
    let peered = |peer: &str| {
        config(&moto.endpoint, 0, "").replacen("    cidr        = \"10.20.0.0/16\"", &format!("    cidr        = \"10.20.0.0/16\"\n    mode        = \"peering\"\n    peer_vpc_id = \"{peer}\""), 1)
    };
    let w = World::new(&peered(&work));
    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    let pcx = w
        .attr("workspace.lab.peering", "id")
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.attr("workspace.lab.peering", "peer_cidr"), "10.50.0.0/16");
    let routes_of = |table: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_route_tables()
                .route_table_ids(table)
                .send()
                .await
                .unwrap();
            out.route_tables()[0]
                .routes()
                .iter()
                .map(|r| {
                    (
                        r.destination_cidr_block().unwrap_or_default().to_string(),
                        r.vpc_peering_connection_id().map(str::to_string),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let ours = w
        .attr("workspace.lab.route_table[\"private\"]", "id")
        .as_str()
        .unwrap()
        .to_string();
    assert!(routes_of(ours)
        .await
        .contains(&("10.50.0.0/16".to_string(), Some(pcx.clone()))));
    assert!(routes_of(work_rt.clone())
        .await
        .contains(&("10.20.0.0/16".to_string(), Some(pcx.clone()))));
    assert!(w.plan().await.changes.is_empty());
    // Destroying the workspace takes its route out of the peer's table too.
    assert!(w.destroy().await.1.ok());
    assert!(!routes_of(work_rt)
        .await
        .iter()
        .any(|(d, _)| d == "10.20.0.0/16"));

    // A peer whose range overlaps ours is refused before anything is peered.
    let clash = moto.vpc("10.20.0.0/16").await;
    let w = World::new(&peered(&clash));
    let (_, report) = w.apply().await;
    let (addr, msg) = report
        .failures
        .iter()
        .find(|(a, _)| a == "workspace.lab.peering")
        .expect("the peering fails");
    assert_eq!(addr, "workspace.lab.peering");
    assert!(
        msg.starts_with(
            "CidrOverlap: network cidr 10.20.0.0/16 overlaps the peer VPC's 10.20.0.0/16"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_vpc_is_used_and_never_created_changed_or_destroyed() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let vpc = moto.vpc("10.70.0.0/16").await;
    let subnet = |cidr: &'static str| {
        let (ec2, vpc) = (ec2.clone(), vpc.clone());
        async move {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(cidr)
                .send()
                .await
                .unwrap()
                .subnet()
                .unwrap()
                .subnet_id()
                .unwrap()
                .to_string()
        }
    };
    let public = subnet("10.70.0.0/24").await;
    ec2.modify_subnet_attribute()
        .subnet_id(&public)
        .map_public_ip_on_launch(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let private = subnet("10.70.1.0/24").await;
    let cfg = config(&moto.endpoint, 2, "").replacen(
        "    cidr        = \"10.20.0.0/16\"",
        &format!("    mode        = \"shared\"\n    vpc_id      = \"{vpc}\""),
        1,
    );
    let w = World::new(&cfg);
    let (plan, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    let types: std::collections::BTreeSet<String> =
        plan.changes.iter().map(|c| c.type_name.clone()).collect();
    for not_made in [
        "aws_vpc",
        "aws_subnet",
        "aws_internet_gateway",
        "aws_route_table",
        "aws_nat_gateway",
        "aws_vpc_endpoint",
    ] {
        assert!(!types.contains(not_made), "{not_made} in {types:?}");
    }
    assert_eq!(w.attr("workspace.lab.vpc", "cidr"), "10.70.0.0/16");
    assert_eq!(
        w.attr("workspace.lab.security_group", "vpc_id").as_str(),
        Some(vpc.as_str())
    );
    assert_eq!(
        w.attr("workspace.lab.security_group_rule[\"ssh-vpc\"]", "cidr"),
        "10.70.0.0/16"
    );
    assert_eq!(
        w.attr("cluster.etl.node.head", "subnet_id").as_str(),
        Some(public.as_str())
    );
    assert_eq!(
        w.attr("cluster.etl.node.worker[\"default\"][1]", "subnet_id")
            .as_str(),
        Some(private.as_str())
    );
    assert!(w.plan().await.changes.is_empty());

    assert!(w.destroy().await.1.ok());
    let left = ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.subnets().len(),
        2,
        "the shared VPC and its subnets are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_aws_sends_and_moto_does_not_are_retried_or_fallen_back_from() {
    let moto = Moto::start();
    // What moto never answers, the proxy does: no spot capacity once, an instance
    // profile EC2 cannot see yet twice, and throttling twice.
    let faults = Faults::start(
        &moto,
        r#"[
          {"when": ["Action=RunInstances", "InstanceMarketOptions.MarketType=spot"],
           "status": 500, "code": "InsufficientInstanceCapacity",
           "message": "There is no Spot capacity available that matches your request.",
           "times": 1},
          {"when": ["Action=RunInstances", "IamInstanceProfile.Name=lab-worker-profile"],
           "status": 400, "code": "InvalidParameterValue",
           "message": "Value (lab-worker-profile) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
           "times": 2},
          {"when": ["Action=DescribeVpcs"], "status": 503, "code": "RequestLimitExceeded",
           "message": "Request limit exceeded.", "times": 2}
        ]"#,
    );
    let cfg = config(&faults.endpoint, 2, "").replacen(
        "    min           = 2\n",
        "    min           = 2\n    spot          = true\n    spot_fallback = true\n",
        1,
    );
    let w = World::new(&cfg);
    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    let plan = w.plan().await;
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert_eq!(faults.fired(), [1, 2, 2]);
    // One worker fell back to on-demand; the other got its spot instance.
    let mut lifecycles: Vec<String> = (0..2)
        .map(|i| {
            w.attr(
                &format!("cluster.etl.node.worker[\"default\"][{i}]"),
                "lifecycle",
            )
            .as_str()
            .unwrap()
            .to_string()
        })
        .collect();
    lifecycles.sort();
    assert_eq!(lifecycles, ["on-demand", "spot"]);

    // Without fallback, the capacity error is the pool's failure, with its code.
    let moto = Moto::start();
    let faults = Faults::start(
        &moto,
        r#"[{"when": ["Action=RunInstances", "InstanceMarketOptions.MarketType=spot"],
             "status": 500, "code": "InsufficientInstanceCapacity",
             "message": "There is no Spot capacity available that matches your request.",
             "times": 1}]"#,
    );
    let cfg = config(&faults.endpoint, 1, "").replacen(
        "    min           = 1\n",
        "    min           = 1\n    spot          = true\n",
        1,
    );
    let w = World::new(&cfg);
    let (_, report) = w.apply().await;
    let (addr, msg) = report
        .failures
        .iter()
        .find(|(a, _)| a.contains("worker"))
        .unwrap_or_else(|| panic!("the spot worker fails: {report:?}"));
    assert_eq!(addr, "cluster.etl.node.worker[\"default\"][0]");
    assert!(
        msg.starts_with("InsufficientInstanceCapacity: RunInstances"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_profile_left_without_its_role_is_taken_over() {
    let moto = Moto::start();
    // As an apply killed between CreateInstanceProfile and AddRoleToInstanceProfile
    // leaves it: the profile exists, under tik's path, with no role.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&conf);
    iam.create_instance_profile()
        .instance_profile_name("lab-worker-profile")
        .path("/tik/")
        .send()
        .await
        .unwrap();
    let w = World::new(&config(&moto.endpoint, 1, ""));
    let (_, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("lab-worker-profile")
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap();
    let roles: Vec<&str> = profile.roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(roles, ["lab-worker-role"]);
    assert_eq!(
        w.attr("workspace.lab.instance_profile[\"worker\"]", "id"),
        profile.instance_profile_id()
    );
    assert!(w.plan().await.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_pools_launch_spot_instances() {
    let moto = Moto::start();
    let cfg = config(&moto.endpoint, 2, "").replacen(
        "    min           = 2\n",
        "    min           = 2\n    spot          = true\n    spot_fallback = true\n",
        1,
    );
    assert!(cfg.contains("spot_fallback"), "{cfg}");
    let w = World::new(&cfg);
    assert!(w.apply().await.1.ok());
    assert_eq!(
        w.attr("cluster.etl.node.worker[\"default\"][0]", "lifecycle"),
        "spot"
    );
    assert_eq!(w.attr("cluster.etl.node.head", "lifecycle"), "on-demand");
    let ec2 = moto.ec2().await;
    let id = w
        .attr("cluster.etl.node.worker[\"default\"][1]", "id")
        .as_str()
        .unwrap()
        .to_string();
    let out = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.reservations()[0].instances()[0].instance_lifecycle(),
        Some(&aws_sdk_ec2::types::InstanceLifecycleType::Spot)
    );
    assert!(w.plan().await.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pool_does_not_stop_the_others() {
    let moto = Moto::start();
    let bad_pool = "  workers \"broken\" {\n    image = \"ami-00000000\"\n    min   = 2\n  }\n}\n";
    let cfg = config(&moto.endpoint, 3, "");
    let at = cfg.rfind("}\n").unwrap();
    let cfg = format!("{}{}{}", &cfg[..at], bad_pool, &cfg[at + 2..]);
    let w = World::new(&cfg);
    let (_, report) = w.apply().await;
    let mut failed: Vec<&str> = report.failures.iter().map(|(a, _)| a.as_str()).collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "cluster.etl.node.worker[\"broken\"][0]",
            "cluster.etl.node.worker[\"broken\"][1]"
        ]
    );
    assert!(
        report
            .failures
            .iter()
            .all(|(_, m)| m.starts_with("InvalidAMIID.NotFound")),
        "{:?}",
        report.failures
    );
    for i in 0..3 {
        let id = w.attr(&format!("cluster.etl.node.worker[\"default\"][{i}]"), "id");
        assert!(
            id.as_str().is_some_and(|s| s.starts_with("i-")),
            "worker {i}: {id}"
        );
    }
}

/// What a plan does to the resource at `address`.
fn action_of(plan: &tik_engine::plan::Plan, address: &str) -> Option<Action> {
    plan.changes
        .iter()
        .find(|c| c.address.to_string() == address)
        .map(|c| c.action)
}

/// What a plan's refresh found of the resource at `address`.
fn drift_of(plan: &tik_engine::plan::Plan, address: &str) -> Option<DriftKind> {
    plan.drift
        .iter()
        .find(|d| d.address.to_string() == address)
        .map(|d| d.kind)
}

/// Rewrites a record as a create cut short before its answer would have been recorded:
/// pending, without its id or what only the answer held.
fn cut_short(w: &World, address: &str, answer_only: &[&str]) {
    use tik_engine::state::{JournalEntry, StateStore, Status};
    let mut store = StateStore::load(&w.backend).unwrap();
    let addr = tik_engine::addr::Address::parse(address).unwrap();
    let mut r = store.state.resources[&addr].clone();
    r.status = Status::Pending;
    for k in ["id"].iter().chain(answer_only) {
        r.attributes.shift_remove(*k);
    }
    store.record(JournalEntry::Put { resource: r }).unwrap();
    store.save().unwrap();
}

async fn tagged_addresses(moto: &Moto) -> Vec<aws_sdk_ec2::types::Address> {
    moto.ec2()
        .await
        .describe_addresses()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values("tik:lineage")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .addresses()
        .to_vec()
}

/// Objects whose create was cut short are found again by one read of the lineage's
/// objects of their type, matched on the address here: moto's tag filter takes `[` as a
/// pattern, so looking up `subnet["public"]` by its address tag found nothing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_cut_short_are_found_by_their_address_whatever_it_holds() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 1, ""));
    assert!(w.apply().await.1.ok());
    let subnet = "workspace.lab.subnet[\"public\"]";
    let id = w.attr(subnet, "id");
    cut_short(&w, subnet, &[]);
    let plan = w.plan().await;
    assert_eq!(
        drift_of(&plan, subnet),
        Some(DriftKind::Adopted),
        "{:#?}",
        plan.drift
    );
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert!(w.apply().await.1.ok());
    assert_eq!(w.attr(subnet, "id"), id);
    assert!(w.destroy().await.1.ok());
}

/// A key pair made by a create cut short after CreateKeyPair has a private key no one
/// recorded: adopting it would launch nodes nobody can log in to. It is made anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_pair_whose_private_key_was_lost_is_made_anew() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 0, ""));
    assert!(w.apply().await.1.ok());
    let key = "cluster.etl.key_pair";
    let old = w.attr(key, "id");
    cut_short(&w, key, &["private_key", "fingerprint"]);
    let plan = w.plan().await;
    assert_eq!(
        action_of(&plan, key),
        Some(Action::Replace),
        "{:#?}",
        plan.changes
    );
    assert!(w.apply().await.1.ok());
    assert_ne!(w.attr(key, "id"), old);
    assert!(w
        .attr(key, "private_key")
        .as_str()
        .is_some_and(|k| k.contains("PRIVATE KEY")));
    assert!(w.plan().await.changes.is_empty());
    assert!(w.destroy().await.1.ok());
}

/// Elastic IPs cost money: one allocated by a NAT gateway's create that was cut short is
/// taken by the next create, and one that nothing holds or names is an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_elastic_ip_is_left_behind_by_a_nat_gateway_cut_short() {
    use tik_engine::plan::{OrphanAction, PlanOptions};
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 0, ""));
    assert!(w.apply().await.1.ok());
    let nat = "workspace.lab.nat_gateway";
    let held = w.attr(nat, "allocation_id");
    assert_eq!(tagged_addresses(&moto).await.len(), 1);

    // Killed while waiting for the gateway's deletion: it is gone, its address is not.
    let ec2 = moto.ec2().await;
    ec2.delete_nat_gateway()
        .nat_gateway_id(w.attr(nat, "id").as_str().unwrap())
        .send()
        .await
        .unwrap();
    let plan = w.plan().await;
    assert_eq!(
        action_of(&plan, nat),
        Some(Action::Replace),
        "{:#?}",
        plan.changes
    );
    assert!(w.apply().await.1.ok());
    let left = tagged_addresses(&moto).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert!(left[0].association_id().is_some_and(|a| !a.is_empty()));
    assert_ne!(left[0].allocation_id(), held.as_str());

    // Killed between AllocateAddress and CreateNatGateway's answer: the gateway never
    // came, its address did. The next create takes that address. (The old gateway is
    // deleted by hand first, and its address released, as a finished delete leaves them.)
    let lineage = w.state()["lineage"].as_str().unwrap().to_string();
    let tagged = |address: &str| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::ElasticIp)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("tik:address")
                    .value(address)
                    .build(),
            )
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("tik:lineage")
                    .value(&lineage)
                    .build(),
            )
            .build()
    };
    ec2.delete_nat_gateway()
        .nat_gateway_id(w.attr(nat, "id").as_str().unwrap())
        .send()
        .await
        .unwrap();
    ec2.release_address()
        .allocation_id(w.attr(nat, "allocation_id").as_str().unwrap())
        .send()
        .await
        .unwrap();
    let allocated = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .tag_specifications(tagged(nat))
        .send()
        .await
        .unwrap();
    cut_short(&w, nat, &["allocation_id", "public_ip"]);
    let (plan, report) = w.apply().await;
    assert!(report.ok(), "{report:?}");
    assert!(plan.changes.iter().any(|c| c.address.to_string() == nat));
    assert_eq!(
        w.attr(nat, "allocation_id").as_str(),
        allocated.allocation_id(),
        "{:#?}\n{:#?}",
        tagged_addresses(&moto).await,
        plan.changes
            .iter()
            .map(|c| (c.address.to_string(), c.action))
            .collect::<Vec<_>>()
    );
    assert_eq!(tagged_addresses(&moto).await.len(), 1);

    // One that nothing holds and no record names is an orphan, released on request.
    let spare = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .tag_specifications(tagged(nat))
        .send()
        .await
        .unwrap();
    let plan = w.plan().await;
    let orphans: Vec<String> = plan
        .orphans
        .iter()
        .map(|o| format!("{} {}", o.type_name, o.address))
        .collect();
    assert_eq!(
        orphans,
        ["aws_elastic_ip workspace.lab.nat_gateway.elastic_ip"]
    );
    let (_, report) = w
        .apply_with(
            PlanOptions {
                orphans: OrphanAction::Destroy,
                ..Default::default()
            },
            10,
        )
        .await;
    assert!(report.ok(), "{report:?}");
    let left = tagged_addresses(&moto).await;
    assert!(left
        .iter()
        .all(|a| a.allocation_id() != spare.allocation_id()));
    assert!(w.plan().await.orphans.is_empty());
    assert!(w.destroy().await.1.ok());
    assert!(tagged_addresses(&moto).await.is_empty());
}

/// The service spells an endpoint's states in lower case (`deleted`): one deleted
/// outside tik is drift, not present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_vpc_endpoint_reads_as_deleted() {
    let moto = Moto::start();
    let w = World::new(&config(&moto.endpoint, 0, ""));
    assert!(w.apply().await.1.ok());
    let endpoint = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "aws_vpc_endpoint")
        .map(|r| r["address"].as_str().unwrap().to_string())
        .expect("the workspace has an S3 endpoint");
    moto.ec2()
        .await
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(w.attr(&endpoint, "id").as_str().unwrap())
        .send()
        .await
        .unwrap();
    let plan = w.plan().await;
    assert_eq!(
        drift_of(&plan, &endpoint),
        Some(DriftKind::Deleted),
        "{:#?}",
        plan.drift
    );
    assert!(w.apply().await.1.ok());
    assert!(w.plan().await.changes.is_empty());
    assert!(w.destroy().await.1.ok());
}
