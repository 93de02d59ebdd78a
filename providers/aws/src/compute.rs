//! Key pairs and instances: the nodes of a cluster.

use crate::attrs::{carry, filter, int, opt_s, read_tags, retag, s, tag_spec};
use crate::errors::{api_error, code_of, gone_ok};
use crate::Found;
use aws_sdk_ec2::client::Waiters as _;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceStateName, InstanceType,
    MarketType, ResourceType, SpotInstanceType, SpotMarketOptions, VolumeType,
};
use aws_sdk_ec2::Client;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use std::time::Duration;
use tik_engine::connection::{self, Identity, NodeConnection, Ssh};
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

/// How long a node may take to start or stop before tik reports it.
const NODE_WAIT: Duration = Duration::from_secs(600);

pub async fn read_key_pairs(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let out = ec2
        .describe_key_pairs()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| api_error("DescribeKeyPairs", e))?;
    Ok(out
        .key_pairs()
        .iter()
        .map(|k| {
            let mut attrs = Map::new();
            attrs.insert(
                "id".into(),
                Value::from(k.key_pair_id().unwrap_or_default()),
            );
            attrs.insert(
                "fingerprint".into(),
                Value::from(k.key_fingerprint().unwrap_or_default()),
            );
            read_tags(k.tags(), &mut attrs);
            attrs.insert("name".into(), Value::from(k.key_name().unwrap_or_default()));
            Found::new(attrs, k.tags())
        })
        .collect())
}

pub async fn apply_key_pair(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let name = s(a, "name")?;
    match change.operation {
        Operation::Create => {
            let mut attrs = a.clone();
            let (id, fingerprint) = match opt_s(a, "public_key") {
                Some(key) => {
                    // The user keeps the private half.
                    attrs.insert("private_key".into(), Value::Null);
                    let out = ec2
                        .import_key_pair()
                        .key_name(name)
                        .public_key_material(aws_smithy_types::Blob::new(key.as_bytes()))
                        .tag_specifications(tag_spec(ResourceType::KeyPair, change))
                        .send()
                        .await
                        .map_err(|e| api_error("ImportKeyPair", e))?;
                    (
                        out.key_pair_id().map(str::to_string),
                        out.key_fingerprint().map(str::to_string),
                    )
                }
                None => {
                    let out = ec2
                        .create_key_pair()
                        .key_name(name)
                        .tag_specifications(tag_spec(ResourceType::KeyPair, change))
                        .send()
                        .await
                        .map_err(|e| api_error("CreateKeyPair", e))?;
                    // Only this answer ever holds the private key: it is kept, sensitive, in state.
                    attrs.insert(
                        "private_key".into(),
                        Value::from(out.key_material().unwrap_or_default()),
                    );
                    (
                        out.key_pair_id().map(str::to_string),
                        out.key_fingerprint().map(str::to_string),
                    )
                }
            };
            attrs.insert("id".into(), Value::from(id.unwrap_or_default()));
            attrs.insert(
                "fingerprint".into(),
                Value::from(fingerprint.unwrap_or_default()),
            );
            Ok(attrs)
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => gone_ok(
            "DeleteKeyPair",
            ec2.delete_key_pair().key_name(name).send().await,
        ),
    }
}

/// Runs an instance. A new instance profile takes a while to become visible to EC2
/// (IAM is eventually consistent): that one error is retried with growing waits.
async fn launch(
    run: aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
) -> Result<aws_sdk_ec2::operation::run_instances::RunInstancesOutput, ProviderError> {
    let mut wait = Duration::from_secs(1);
    loop {
        match run.clone().send().await {
            Ok(out) => return Ok(out),
            Err(e) if profile_not_visible_yet(&e) && wait < Duration::from_secs(64) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(api_error("RunInstances", e)),
        }
    }
}

/// The errors that mean "no capacity for this request now", where on-demand may still work.
pub fn is_capacity_error(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InsufficientInstanceCapacity"
                | "InsufficientCapacity"
                | "SpotMaxPriceTooLow"
                | "MaxSpotInstanceCountExceeded"
        )
    )
}

/// EC2 answers a capacity error with a server status, which the SDK's standard mode
/// retries for a minute or more. For a spot request with a fallback that is time lost,
/// and without one the answer will not change soon: capacity errors are final.
#[derive(Debug)]
pub struct CapacityIsFinal;

impl ClassifyRetry for CapacityIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        let code = match ctx.output_or_error() {
            Some(Err(e)) => e
                .as_operation_error()
                .and_then(|e| {
                    e.downcast_ref::<aws_sdk_ec2::operation::run_instances::RunInstancesError>()
                })
                .and_then(|e| e.code()),
            _ => None,
        };
        if is_capacity_error(code) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "tik: capacity errors are final"
    }
}

fn profile_not_visible_yet<R>(
    e: &aws_sdk_ec2::error::SdkError<aws_sdk_ec2::operation::run_instances::RunInstancesError, R>,
) -> bool {
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    match e {
        aws_sdk_ec2::error::SdkError::ServiceError(s) => {
            s.err().code() == Some("InvalidParameterValue")
                && s.err()
                    .message()
                    .is_some_and(|m| m.contains("iamInstanceProfile"))
        }
        _ => false,
    }
}

pub async fn read_instances(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    // The largest page AWS allows: a thousand nodes in one call.
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page
            .map_err(|e| api_error("DescribeInstances", e))?
            .reservations()
        {
            for i in r.instances() {
                let state = i.state().and_then(|s| s.name()).cloned();
                // A terminated node is gone, whatever DescribeInstances still says of it.
                if matches!(
                    state,
                    Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
                ) {
                    continue;
                }
                let mut attrs = Map::new();
                attrs.insert(
                    "id".into(),
                    Value::from(i.instance_id().unwrap_or_default()),
                );
                attrs.insert(
                    "image".into(),
                    Value::from(i.image_id().unwrap_or_default()),
                );
                attrs.insert(
                    "instance_type".into(),
                    Value::from(i.instance_type().map(|t| t.as_str()).unwrap_or_default()),
                );
                attrs.insert(
                    "subnet_id".into(),
                    Value::from(i.subnet_id().unwrap_or_default()),
                );
                attrs.insert(
                    "private_ip".into(),
                    i.private_ip_address().map_or(Value::Null, Value::from),
                );
                attrs.insert(
                    "public_ip".into(),
                    i.public_ip_address().map_or(Value::Null, Value::from),
                );
                attrs.insert(
                    "key_name".into(),
                    i.key_name().map_or(Value::Null, Value::from),
                );
                let spot = i.instance_lifecycle()
                    == Some(&aws_sdk_ec2::types::InstanceLifecycleType::Spot);
                attrs.insert(
                    "lifecycle".into(),
                    Value::from(if spot { "spot" } else { "on-demand" }),
                );
                if let Some(g) = i.security_groups().first().and_then(|g| g.group_id()) {
                    attrs.insert("security_group_id".into(), Value::from(g));
                }
                read_tags(i.tags(), &mut attrs);
                out.push(Found::new(attrs, i.tags()));
            }
        }
    }
    Ok(out)
}

pub async fn apply_instance(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let disk = BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(int(a, "disk_gb")?)
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build();
            let mut run = ec2
                .run_instances()
                .image_id(s(a, "image")?)
                .instance_type(InstanceType::from(s(a, "instance_type")?))
                .min_count(1)
                .max_count(1)
                .subnet_id(s(a, "subnet_id")?)
                .security_group_ids(s(a, "security_group_id")?)
                .block_device_mappings(disk)
                .tag_specifications(tag_spec(ResourceType::Instance, change))
                .tag_specifications(tag_spec(ResourceType::Volume, change));
            if let Some(key) = opt_s(a, "key_name") {
                run = run.key_name(key);
            }
            if let Some(profile) = opt_s(a, "iam_instance_profile") {
                run = run.iam_instance_profile(
                    IamInstanceProfileSpecification::builder()
                        .name(profile)
                        .build(),
                );
            }
            let spot = a.get("spot").and_then(Value::as_bool) == Some(true);
            let fallback = a.get("spot_fallback").and_then(Value::as_bool) == Some(true);
            let out = if spot {
                let market = InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build();
                match launch(run.clone().instance_market_options(market)).await {
                    // No spot capacity: on demand instead, where the configuration allows it.
                    Err(e) if fallback && is_capacity_error(e.code.as_deref()) => {
                        launch(run).await?
                    }
                    other => other?,
                }
            } else {
                launch(run).await?
            };
            let id = out
                .instances()
                .first()
                .and_then(|i| i.instance_id())
                .unwrap_or_default()
                .to_string();
            ec2.wait_until_instance_running()
                .instance_ids(&id)
                .wait(NODE_WAIT)
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "{id} did not reach running within {} s: {e}",
                        NODE_WAIT.as_secs()
                    ))
                })?;
            // Addresses are known once it runs.
            let found = read_instances(ec2, vec![filter("instance-id", vec![id.clone()])]).await?;
            let mut attrs = a.clone();
            if let Some(f) = found.into_iter().next() {
                carry(
                    &f.attrs,
                    &mut attrs,
                    &["id", "private_ip", "public_ip", "lifecycle"],
                );
            }
            attrs.insert("id".into(), Value::from(id));
            set_connection(&mut attrs);
            Ok(attrs)
        }
        Operation::Update => {
            let mut attrs = retag(ec2, change).await?;
            set_connection(&mut attrs);
            Ok(attrs)
        }
        Operation::Delete => {
            let id = s(a, "id")?;
            match ec2.terminate_instances().instance_ids(id).send().await {
                Ok(_) => {}
                Err(e) if code_of(&e).is_some_and(|c| c.ends_with(".NotFound")) => {
                    return Ok(Map::new())
                }
                Err(e) => return Err(api_error("TerminateInstances", e)),
            }
            // Its network interface holds the security group until it is gone.
            ec2.wait_until_instance_terminated()
                .instance_ids(id)
                .wait(NODE_WAIT)
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "{id} did not terminate within {} s: {e}",
                        NODE_WAIT.as_secs()
                    ))
                })?;
            Ok(Map::new())
        }
    }
}

/// How tik logs in to a node (its `connection`, which the engine's node steps use):
/// over SSH at its public address, or at its private one where it has none, is
/// reached through the head (`public_address = false`) or the cluster says
/// `use_internal_ips`; as `ssh_user` on `ssh_port`, with the user's key file or the
/// key tik made; in `~/tik`. A node without an address yet offers none.
pub fn set_connection(attrs: &mut Map) {
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_string);
    let private = attrs.get("ssh_internal_ips") == Some(&Value::Bool(true))
        || attrs.get("public_address") == Some(&Value::Bool(false));
    let host = if private {
        text("private_ip")
    } else {
        text("public_ip").or_else(|| text("private_ip"))
    };
    let (Some(host), Some(user)) = (host, text("ssh_user")) else {
        attrs.shift_remove("connection");
        return;
    };
    let identity = match (text("ssh_private_key_file"), text("ssh_private_key")) {
        (Some(f), _) => Some(Identity::File(f)),
        (None, Some(k)) => Some(Identity::Key(k)),
        (None, None) => None,
    };
    let ssh = Ssh {
        host,
        port: attrs
            .get("ssh_port")
            .and_then(Value::as_f64)
            .filter(|p| (1.0..=65535.0).contains(p) && p.fract() == 0.0)
            .map_or(22, |p| p as u16),
        user,
        identity,
    };
    // Steps keep their files under the login's ~/tik.
    attrs.insert(
        connection::ATTRIBUTE.into(),
        NodeConnection::ssh(ssh, "tik").to_value(),
    );
}

#[cfg(test)]
mod tests {
    use tik_engine::value::{Map, Value};

    fn node(pairs: &[(&str, Value)]) -> Map {
        let mut m: Map = [
            ("private_ip", Value::from("10.0.1.7")),
            ("public_ip", Value::from("203.0.113.9")),
            ("ssh_user", Value::from("ubuntu")),
            ("ssh_port", Value::Number(22.0)),
            ("ssh_private_key", Value::from("-----BEGIN KEY-----")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in pairs {
            m.insert(k.to_string(), v.clone());
        }
        super::set_connection(&mut m);
        m
    }

    #[test]
    fn a_node_is_reached_where_tik_can_reach_it_with_the_key_it_has() {
        let c = |m: &Map, k: &str| m["connection"].get(k).cloned().unwrap_or(Value::Null);
        let head = node(&[]);
        assert_eq!(c(&head, "host"), Value::from("203.0.113.9"));
        assert_eq!(c(&head, "user"), Value::from("ubuntu"));
        assert_eq!(c(&head, "home"), Value::from("tik"));
        assert_eq!(c(&head, "private_key"), Value::from("-----BEGIN KEY-----"));
        let worker = node(&[
            ("public_address", Value::Bool(false)),
            ("public_ip", Value::Null),
        ]);
        assert_eq!(c(&worker, "host"), Value::from("10.0.1.7"));
        let inside = node(&[("ssh_internal_ips", Value::Bool(true))]);
        assert_eq!(c(&inside, "host"), Value::from("10.0.1.7"));
        let own_key = node(&[("ssh_private_key_file", Value::from("~/.ssh/id"))]);
        assert_eq!(c(&own_key, "key_file"), Value::from("~/.ssh/id"));
        assert_eq!(own_key["connection"].get("private_key"), None);
        // Recorded before nodes had a way in: none until the plan gives them one.
        let old = node(&[("ssh_user", Value::Null)]);
        assert_eq!(old.get("connection"), None);
    }
    #[test]
    fn only_capacity_errors_fall_back_to_on_demand() {
        assert!(super::is_capacity_error(Some(
            "InsufficientInstanceCapacity"
        )));
        assert!(super::is_capacity_error(Some("SpotMaxPriceTooLow")));
        assert!(!super::is_capacity_error(Some("InvalidAMIID.NotFound")));
        assert!(!super::is_capacity_error(None));
    }
}
