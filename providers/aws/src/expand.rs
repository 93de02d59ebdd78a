//! How workspace and cluster blocks become AWS resources, with deterministic names.

use crate::StateAccess;
use tik_engine::addr::Address;
use tik_engine::provider::{BlockKind, ExpandError, ExpandRequest, ResourceSpec, Schema};
use tik_engine::value::{Map, Value};

pub fn expand(
    request: &ExpandRequest<'_>,
    state: Option<&StateAccess>,
) -> Result<Vec<ResourceSpec>, ExpandError> {
    match request.kind {
        BlockKind::Workspace => workspace(request.name, request.config),
        BlockKind::Cluster => cluster(request.name, request.config, state),
    }
}

/// What AWS workspace and cluster blocks hold beyond the shared parts.
pub fn block_schema(kind: BlockKind) -> Schema {
    match kind {
        BlockKind::Workspace => Schema::default()
            .attr("region")
            .attr("endpoint")
            .attr("transport")
            .attr("tags")
            .block(
                "network",
                Schema::default()
                    .attr("cidr")
                    .attr("mode")
                    .attr("allowed_ssh")
                    .attr("vpc_id")
                    .attr("peer_vpc_id")
                    .attr("availability_zones"),
            )
            .block(
                "iam",
                Schema::default()
                    .attr("head_statements")
                    .attr("worker_statements"),
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
                .labeled_block("workers", node.attr("spot").attr("spot_fallback"))
        }
    }
}

fn get<'v>(v: &'v Map, path: &[&str]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(v.get(*first)?, |cur, k| cur.get(k))
}

fn text(v: &Map, path: &[&str]) -> Option<String> {
    get(v, path).and_then(Value::as_str).map(str::to_string)
}

fn obj(pairs: &[(&str, Value)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Region and endpoint, which every resource carries, and the workspace's tags.
fn base(config: &Map, workspace: &str, extra_tags: &[(&str, &str)]) -> Result<Map, String> {
    let region = text(config, &["region"])
        .ok_or("region is required for the aws provider, as in region = \"us-east-1\"")?;
    let mut tags = get(config, &["tags"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    tags.insert("tik:workspace".into(), Value::from(workspace));
    for (k, v) in extra_tags {
        tags.insert(k.to_string(), Value::from(*v));
    }
    let mut m = obj(&[
        ("region", Value::String(region)),
        ("tags", Value::Object(tags)),
    ]);
    if let Some(e) = get(config, &["endpoint"]).filter(|v| !matches!(v, Value::Null)) {
        m.insert("endpoint".into(), e.clone());
    }
    Ok(m)
}

fn with(mut base: Map, pairs: &[(&str, Value)]) -> Map {
    for (k, v) in pairs {
        base.insert(k.to_string(), v.clone());
    }
    base
}

fn without_tags(mut m: Map) -> Map {
    m.shift_remove("tags");
    m
}

fn workspace(name: &str, c: &Map) -> Result<Vec<ResourceSpec>, ExpandError> {
    let mode = network_mode(c)?;
    let b = base(c, name, &[])?;
    let region = text(&b, &["region"]).unwrap_or_default();
    let cidr = text(c, &["network", "cidr"]).unwrap_or_else(|| "10.0.0.0/16".into());
    let azs = zones(c, &region)?;
    let net = Net {
        name,
        b: &b,
        cidr: &cidr,
    };
    let mut specs = net.network(&azs[0], &region)?;
    specs.extend(net.private_subnets(&azs)?);
    if mode == "shared" {
        specs = net.shared(c)?;
    }
    specs.extend(net.firewall(c)?);
    if mode == "peering" {
        specs.extend(peering(name, c, &b, &cidr)?);
    }
    specs.extend(identity_and_storage(name, c, &b, &region)?);
    Ok(specs)
}

/// `network.mode`: public-head (the default), peering or shared.
fn network_mode(c: &Map) -> Result<String, ExpandError> {
    match text(c, &["network", "mode"]) {
        None => Ok("public-head".into()),
        Some(m) if ["public-head", "peering", "shared"].contains(&m.as_str()) => Ok(m),
        Some(other) => Err(ExpandError::at(
            &["network", "mode"],
            format!("network mode \"{other}\" is not one of public-head, peering, shared"),
        )),
    }
}

/// `network.availability_zones`, by default the region's first two.
fn zones(c: &Map, region: &str) -> Result<Vec<String>, ExpandError> {
    match get(c, &["network", "availability_zones"]) {
        Some(Value::List(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("availability_zones lists names like \"us-east-1a\"")
            })
            .collect::<Result<_, _>>()
            .map_err(|e| ExpandError::at(&["network", "availability_zones"], e)),
        Some(_) => Err(ExpandError::at(
            &["network", "availability_zones"],
            "availability_zones must be a non-empty list of zone names",
        )),
        None => Ok(vec![format!("{region}a"), format!("{region}b")]),
    }
}

/// A workspace's network: its name, the settings every resource carries, its range.
struct Net<'a> {
    name: &'a str,
    b: &'a Map,
    cidr: &'a str,
}

fn vpc() -> Address {
    Address::new().name("vpc")
}
fn sg() -> Address {
    Address::new().name("security_group")
}
fn rt(k: &str) -> Address {
    Address::new().name("route_table").key(k)
}
fn sn(k: &str) -> Address {
    Address::new().name("subnet").key(k)
}

impl Net<'_> {
    /// The `n`th /24 (with a /16) of the workspace's range.
    fn subnet(&self, n: usize) -> Result<String, ExpandError> {
        tik_engine::eval::cidrsubnet(self.cidr, 8.0, n as f64).map_err(|e| {
            ExpandError::at(
                &["network", "cidr"],
                format!("network cidr {}: {e}", self.cidr),
            )
        })
    }

    /// The VPC, its internet gateway, the public subnet (in zone `az`) and both
    /// route tables, the NAT gateway, the S3 endpoint and the security group.
    fn network(&self, az: &str, region: &str) -> Result<Vec<ResourceSpec>, ExpandError> {
        let (name, b, cidr) = (self.name, self.b, self.cidr);
        let vpc = vpc();
        let igw = Address::new().name("internet_gateway");
        let nat = Address::new().name("nat_gateway");
        let subnet = |n: usize| self.subnet(n);
        let specs = vec![
            ResourceSpec::new(
                vpc.clone(),
                "aws_vpc",
                with(
                    b.clone(),
                    &[
                        ("name", Value::from(format!("{name}-vpc"))),
                        ("cidr", Value::from(cidr)),
                    ],
                ),
            ),
            ResourceSpec::new(
                igw.clone(),
                "aws_internet_gateway",
                with(b.clone(), &[("name", Value::from(format!("{name}-igw")))]),
            )
            .with_ref("vpc_id", &vpc, "id"),
            ResourceSpec::new(
                sn("public"),
                "aws_subnet",
                with(
                    b.clone(),
                    &[
                        ("name", Value::from(format!("{name}-public-subnet"))),
                        ("cidr", Value::String(subnet(0)?)),
                        ("availability_zone", Value::from(az)),
                        ("public", Value::Bool(true)),
                    ],
                ),
            )
            .with_ref("vpc_id", &vpc, "id"),
            ResourceSpec::new(
                rt("public"),
                "aws_route_table",
                with(
                    b.clone(),
                    &[("name", Value::from(format!("{name}-public-rt")))],
                ),
            )
            .with_ref("vpc_id", &vpc, "id"),
            ResourceSpec::new(
                Address::new().name("route").key("public-internet"),
                "aws_route",
                without_tags(with(
                    b.clone(),
                    &[("destination", Value::from("0.0.0.0/0"))],
                )),
            )
            .with_ref("route_table_id", &rt("public"), "id")
            .with_ref("gateway_id", &igw, "id"),
            ResourceSpec::new(
                Address::new().name("route_table_association").key("public"),
                "aws_route_table_association",
                without_tags(b.clone()),
            )
            .with_ref("route_table_id", &rt("public"), "id")
            .with_ref("subnet_id", &sn("public"), "id"),
            ResourceSpec::new(
                rt("private"),
                "aws_route_table",
                with(
                    b.clone(),
                    &[("name", Value::from(format!("{name}-private-rt")))],
                ),
            )
            .with_ref("vpc_id", &vpc, "id"),
            // Private subnets reach out through a NAT gateway in the public subnet.
            ResourceSpec::new(
                nat.clone(),
                "aws_nat_gateway",
                with(b.clone(), &[("name", Value::from(format!("{name}-nat")))]),
            )
            .with_ref("subnet_id", &sn("public"), "id")
            .after(&igw),
            ResourceSpec::new(
                Address::new().name("route").key("private-nat"),
                "aws_route",
                without_tags(with(
                    b.clone(),
                    &[("destination", Value::from("0.0.0.0/0"))],
                )),
            )
            .with_ref("route_table_id", &rt("private"), "id")
            .with_ref("nat_gateway_id", &nat, "id"),
            // S3 traffic from the private subnets stays inside AWS.
            ResourceSpec::new(
                Address::new().name("s3_endpoint"),
                "aws_vpc_endpoint",
                with(
                    b.clone(),
                    &[
                        ("name", Value::from(format!("{name}-s3-endpoint"))),
                        ("service", Value::from(format!("com.amazonaws.{region}.s3"))),
                    ],
                ),
            )
            .with_ref("vpc_id", &vpc, "id")
            .with_ref("route_table_id", &rt("private"), "id"),
            self.security_group(),
        ];
        Ok(specs)
    }

    /// One private subnet per zone, each with its route table association.
    fn private_subnets(&self, azs: &[String]) -> Result<Vec<ResourceSpec>, ExpandError> {
        let (name, b) = (self.name, self.b);
        let vpc = vpc();
        let subnet = |n: usize| self.subnet(n);
        let mut specs = Vec::new();
        for (i, az) in azs.iter().enumerate() {
            let key = format!("private-{}", i + 1);
            specs.push(
                ResourceSpec::new(
                    sn(&key),
                    "aws_subnet",
                    with(
                        b.clone(),
                        &[
                            ("name", Value::from(format!("{name}-{key}-subnet"))),
                            ("cidr", Value::String(subnet(i + 1)?)),
                            ("availability_zone", Value::from(az.as_str())),
                            ("public", Value::Bool(false)),
                        ],
                    ),
                )
                .with_ref("vpc_id", &vpc, "id"),
            );
            specs.push(
                ResourceSpec::new(
                    Address::new()
                        .name("route_table_association")
                        .key(key.as_str()),
                    "aws_route_table_association",
                    without_tags(b.clone()),
                )
                .with_ref("route_table_id", &rt("private"), "id")
                .with_ref("subnet_id", &sn(&key), "id"),
            );
        }
        Ok(specs)
    }

    /// `network.mode = "shared"`: an existing VPC, looked up, never created or
    /// destroyed, and nothing network-wide is added to it; only the workspace's own
    /// security group goes in.
    fn shared(&self, c: &Map) -> Result<Vec<ResourceSpec>, ExpandError> {
        let vpc_id = text(c, &["network", "vpc_id"])
            .ok_or("network mode \"shared\" needs vpc_id = \"vpc-...\", the VPC to use")?;
        let lookup = without_tags(with(self.b.clone(), &[("vpc_id", Value::String(vpc_id))]));
        Ok(vec![
            ResourceSpec::new(vpc(), "aws_existing_vpc", lookup),
            self.security_group(),
        ])
    }

    /// The workspace's security group, in its VPC.
    fn security_group(&self) -> ResourceSpec {
        let name = self.name;
        ResourceSpec::new(
            sg(),
            "aws_security_group",
            with(
                self.b.clone(),
                &[
                    ("name", Value::from(format!("{name}-sg"))),
                    ("description", Value::from(format!("tik workspace {name}"))),
                ],
            ),
        )
        .with_ref("vpc_id", &vpc(), "id")
    }

    /// The security group's rules, each a resource of its own (a changed rule is
    /// revoked or authorized alone): all traffic within the workspace, SSH from the
    /// VPC and from `network.allowed_ssh`.
    fn firewall(&self, c: &Map) -> Result<Vec<ResourceSpec>, ExpandError> {
        let b = self.b;
        let sg = sg();
        let vpc = vpc();
        let mut specs = Vec::new();
        let rule = |key: String, pairs: &[(&str, Value)]| {
            ResourceSpec::new(
                Address::new().name("security_group_rule").key(key),
                "aws_security_group_rule",
                without_tags(with(b.clone(), pairs)),
            )
            .with_ref("security_group_id", &sg, "id")
        };
        let n = |x: f64| Value::Number(x);
        specs.push(rule(
            "self".into(),
            &[
                ("protocol", Value::from("-1")),
                ("from_port", n(-1.0)),
                ("to_port", n(-1.0)),
                ("source_self", Value::Bool(true)),
                (
                    "description",
                    Value::from("all traffic within the workspace"),
                ),
            ],
        ));
        // The VPC's own range, whether tik made the VPC or looked it up.
        specs.push(
            rule(
                "ssh-vpc".into(),
                &[
                    ("protocol", Value::from("tcp")),
                    ("from_port", n(22.0)),
                    ("to_port", n(22.0)),
                    ("description", Value::from("ssh from the vpc")),
                ],
            )
            .with_ref("cidr", &vpc, "cidr"),
        );
        if let Some(list) = get(c, &["network", "allowed_ssh"]) {
            let Value::List(items) = list else {
                return Err("allowed_ssh must be a list of CIDR ranges".into());
            };
            for item in items {
                let range = item
                    .as_str()
                    .ok_or("allowed_ssh lists CIDR ranges like \"203.0.113.0/24\"")?;
                specs.push(rule(
                    format!("ssh-{range}"),
                    &[
                        ("protocol", Value::from("tcp")),
                        ("from_port", n(22.0)),
                        ("to_port", n(22.0)),
                        ("cidr", Value::from(range)),
                        ("description", Value::from("ssh from allowed_ssh")),
                    ],
                ));
            }
        }
        Ok(specs)
    }
}

/// A peering connection to the working VPC `network.peer_vpc_id`, and routes to it from
/// both route tables; the connection routes the peer's tables back to us.
fn peering(name: &str, c: &Map, b: &Map, cidr: &str) -> Result<Vec<ResourceSpec>, String> {
    let peer = text(c, &["network", "peer_vpc_id"])
        .ok_or("network mode \"peering\" needs peer_vpc_id = \"vpc-...\", the VPC to peer with")?;
    let pcx = Address::new().name("peering");
    let mut specs = vec![ResourceSpec::new(
        pcx.clone(),
        "aws_vpc_peering_connection",
        with(
            b.clone(),
            &[
                ("name", Value::from(format!("{name}-peering"))),
                ("peer_vpc_id", Value::String(peer)),
                ("cidr", Value::from(cidr)),
            ],
        ),
    )
    .with_ref("vpc_id", &Address::new().name("vpc"), "id")];
    for side in ["public", "private"] {
        specs.push(
            ResourceSpec::new(
                Address::new().name("route").key(format!("{side}-peer")),
                "aws_route",
                without_tags(b.clone()),
            )
            .with_ref(
                "route_table_id",
                &Address::new().name("route_table").key(side),
                "id",
            )
            .with_ref("destination", &pcx, "peer_cidr")
            .with_ref("vpc_peering_connection_id", &pcx, "id"),
        );
    }
    Ok(specs)
}

/// The bucket's name: the configured one, or one derived from the workspace and region.
fn bucket_name(name: &str, c: &Map, region: &str) -> Option<String> {
    if get(c, &["storage", "managed"]).and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(text(c, &["storage", "bucket"]).unwrap_or_else(|| format!("tik-{name}-{region}")))
}

/// Roles and instance profiles for heads and workers, with narrow policies the
/// configuration can widen (`iam { head_statements = [...] }`), and the bucket.
fn identity_and_storage(
    name: &str,
    c: &Map,
    b: &Map,
    region: &str,
) -> Result<Vec<ResourceSpec>, String> {
    let bucket = bucket_name(name, c, region);
    let assume = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }]
    });
    let mut specs = Vec::new();
    for role in ["head", "worker"] {
        let mut statements = vec![
            serde_json::json!({ "Effect": "Allow", "Action": ["ec2:DescribeTags", "ec2:DescribeInstances"], "Resource": "*" }),
        ];
        if let Some(bucket) = &bucket {
            statements.push(serde_json::json!({
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]
            }));
        }
        match get(c, &["iam", &format!("{role}_statements")]) {
            None | Some(Value::Null) => {}
            Some(Value::List(extra)) => statements.extend(extra.iter().map(Value::to_json)),
            Some(_) => {
                return Err(format!(
                    "iam {role}_statements must be a list of policy statements"
                ))
            }
        }
        let policy = serde_json::json!({ "Version": "2012-10-17", "Statement": statements });
        let role_path = Address::new().name("role").key(role);
        specs.push(ResourceSpec::new(
            role_path.clone(),
            "aws_iam_role",
            with(
                b.clone(),
                &[
                    ("name", Value::String(format!("{name}-{role}-role"))),
                    ("assume_policy", Value::String(assume.to_string())),
                    ("policy", Value::String(policy.to_string())),
                ],
            ),
        ));
        specs.push(
            ResourceSpec::new(
                Address::new().name("instance_profile").key(role),
                "aws_iam_instance_profile",
                without_tags(with(
                    b.clone(),
                    &[
                        ("name", Value::String(format!("{name}-{role}-profile"))),
                        ("role_name", Value::String(format!("{name}-{role}-role"))),
                    ],
                )),
            )
            .after(&role_path),
        );
    }
    if let Some(bucket) = bucket {
        let keep = get(c, &["storage", "keep_on_destroy"])
            .cloned()
            .unwrap_or(Value::Bool(true));
        specs.push(ResourceSpec::new(
            Address::new().name("bucket"),
            "aws_s3_bucket",
            with(
                b.clone(),
                &[
                    ("name", Value::String(bucket)),
                    ("keep_on_destroy", keep),
                    ("encryption", Value::from(crate::storage::ENCRYPTION)),
                ],
            ),
        ));
    }
    Ok(specs)
}

fn whole(v: Option<&Value>, what: &str, default: Option<u64>) -> Result<u64, String> {
    match v {
        None | Some(Value::Null) => default.ok_or_else(|| format!("{what} is required")),
        Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= 10_000.0 => Ok(*n as u64),
        Some(Value::Unknown) => Err(format!("{what} must be known when planning")),
        Some(other) => Err(format!("{what} must be a whole number, got {other}")),
    }
}

/// A short hash of what a node was launched with, kept in its `tik:launch-hash` tag.
fn launch_hash(parts: &[&Value]) -> String {
    let text: String = parts
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("|");
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// What a cluster's `ssh` block says of how tik logs in to its nodes, as the
/// attributes each node carries (the engine reads `wait` itself).
fn ssh_settings(c: &Map) -> Result<Map, String> {
    const KEYS: [&str; 6] = [
        "user",
        "port",
        "public_key",
        "private_key_file",
        "use_internal_ips",
        "wait",
    ];
    let empty = Map::new();
    let ssh = match get(c, &["ssh"]) {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err("ssh must be a block: ssh { user = \"ubuntu\" }".into()),
    };
    if let Some(k) = ssh.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "the aws provider's ssh block takes no {k}: {}",
            tik_engine::diag::did_you_mean(k, KEYS.into_iter())
                .unwrap_or_else(|| format!("it takes {}", KEYS.join(", ")))
        ));
    }
    let mut m = Map::new();
    m.insert(
        "ssh_user".into(),
        match ssh.get("user") {
            None | Some(Value::Null) => Value::from("ubuntu"),
            Some(v @ (Value::String(_) | Value::Unknown)) => v.clone(),
            Some(other) => {
                return Err(format!(
                    "ssh.user must be the login name on the image, as in user = \"ubuntu\", got {other}"
                ))
            }
        },
    );
    m.insert(
        "ssh_port".into(),
        match ssh.get("port") {
            None | Some(Value::Null) => Value::Number(22.0),
            Some(Value::Number(n)) if n.fract() == 0.0 && (1.0..=65535.0).contains(n) => {
                Value::Number(*n)
            }
            Some(Value::Unknown) => Value::Unknown,
            Some(other) => {
                return Err(format!(
                    "ssh.port must be a port number from 1 to 65535, got {other}"
                ))
            }
        },
    );
    match ssh.get("private_key_file") {
        None | Some(Value::Null) => {}
        Some(v @ (Value::String(_) | Value::Unknown)) => {
            m.insert("ssh_private_key_file".into(), v.clone());
        }
        Some(other) => {
            return Err(format!(
            "ssh.private_key_file must be the path of the key that matches public_key, got {other}"
        ))
        }
    }
    match ssh.get("use_internal_ips") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(v @ (Value::Bool(true) | Value::Unknown)) => {
            m.insert("ssh_internal_ips".into(), v.clone());
        }
        Some(other) => {
            return Err(format!(
                "ssh.use_internal_ips must be true (tik reaches every node at its private address) or false, got {other}"
            ))
        }
    }
    if m.contains_key("ssh_private_key_file") && get(ssh, &["public_key"]).is_none() {
        return Err(
            "ssh.private_key_file is the key tik logs in with, so the nodes must trust it: \
             give its public half as ssh.public_key = file(\"...pub\") (without both, tik makes \
             a key pair and keeps its private key in state)"
                .into(),
        );
    }
    Ok(m)
}

/// What tik's controller on a cluster's head may do with its workspace's head
/// role: read what a plan of the cluster reads (instances, the network, roles and
/// profiles, buckets), make and end nodes with their profiles, and reach the state.
/// A repair beyond the nodes (a subnet, a role) is for a person's apply.
fn controller_policy(
    ws_name: &str,
    cluster: &str,
    state: Option<&StateAccess>,
) -> Result<serde_json::Value, String> {
    let role = |kind: &str| {
        format!(
            "arn:aws:iam::*:role{}{ws_name}-{kind}-role",
            crate::iam::PATH
        )
    };
    let mut statements = vec![
        serde_json::json!({
            "Sid": "ReadWhatAPlanReads",
            "Effect": "Allow",
            "Action": [
                "ec2:Describe*",
                "iam:GetAccountAuthorizationDetails",
                "iam:GetInstanceProfile",
                "iam:ListInstanceProfiles",
                "s3:ListAllMyBuckets",
                "s3:GetBucketTagging",
                "s3:GetEncryptionConfiguration"
            ],
            "Resource": "*"
        }),
        serde_json::json!({
            "Sid": "MakeNodes",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateTags"],
            "Resource": "*"
        }),
        serde_json::json!({
            "Sid": "EndTheClustersNodes",
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": "*",
            "Condition": { "StringEquals": {
                "aws:ResourceTag/tik:workspace": ws_name,
                "aws:ResourceTag/tik:cluster": cluster
            } }
        }),
        serde_json::json!({
            "Sid": "LaunchWithTheNodesProfiles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": [role("head"), role("worker")]
        }),
    ];
    match state {
        None => {}
        Some(StateAccess::Other(kind)) => {
            return Err(format!(
                "controller on = \"head\": a head on AWS reads the state with its role, and the state is in a {kind} backend; keep it in s3 (tik {{ backend \"s3\" {{ ... }} }}, then tik init --migrate-state), or run tik controller on a machine of yours"
            ))
        }
        Some(StateAccess::S3 {
            bucket,
            key,
            kms_keys,
        }) => {
            statements.push(serde_json::json!({
                "Sid": "TheState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": format!("arn:aws:s3:::{bucket}/{key}*")
            }));
            statements.push(serde_json::json!({
                "Sid": "TheStatesBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": format!("arn:aws:s3:::{bucket}")
            }));
            if !kms_keys.is_empty() {
                // A key given by alias or id is authorized by its ARN, which tik
                // does not know here.
                let keys: Vec<String> = kms_keys
                    .iter()
                    .map(|k| if k.starts_with("arn:") { k.clone() } else { "*".into() })
                    .collect();
                statements.push(serde_json::json!({
                    "Sid": "TheStatesKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": keys
                }));
            }
        }
    }
    Ok(serde_json::json!({ "Version": "2012-10-17", "Statement": statements }))
}

fn cluster(
    name: &str,
    c: &Map,
    state: Option<&StateAccess>,
) -> Result<Vec<ResourceSpec>, ExpandError> {
    let ws = get(c, &["workspace"])
        .and_then(Value::as_object)
        .ok_or("workspace must refer to a workspace block")?;
    let ws_name = text(ws, &["name"]).ok_or("the workspace has no name")?;
    let b = base(ws, &ws_name, &[("tik:cluster", name)])?;
    let key = Address::new().name("key_pair");
    let key_name = format!("{ws_name}-{name}");
    let mut key_config = with(b.clone(), &[("name", Value::from(key_name.as_str()))]);
    if let Some(pk) = get(c, &["ssh", "public_key"]) {
        key_config.insert("public_key".into(), pk.clone());
    }
    let mut specs = vec![ResourceSpec::new(key.clone(), "aws_key_pair", key_config)];
    let (head_subnet, worker_subnets) = cluster_subnets(ws);
    let empty = Map::new();
    let head = get(c, &["head"])
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let launch = Launch {
        base: b,
        image: get(head, &["image"])
            .cloned()
            .ok_or("head needs image = \"ami-...\" (the AMI nodes boot from)")?,
        instance_type: get(head, &["instance_type"])
            .cloned()
            .ok_or("head needs instance_type, as in instance_type = \"m5.xlarge\"")?,
        security_group: get(ws, &["security_group", "id"])
            .cloned()
            .unwrap_or(Value::Unknown),
        key_name,
        ws_name: ws_name.clone(),
        ssh: ssh_settings(c)?,
    };
    // The key tik made, to log in with (none where the user gave public_key).
    let instance = |path: Address, config: Map| {
        ResourceSpec::new(path, "aws_instance", config).with_ref(
            "ssh_private_key",
            &key,
            "private_key",
        )
    };
    specs.push(instance(
        Address::new().name("node").name("head"),
        launch.node("head", format!("{name}-head"), head, head_subnet, None)?,
    ));
    if let Some(Value::Object(pools)) = get(c, &["workers"]) {
        for (pool, settings) in pools {
            let settings = settings.as_object().unwrap_or(&empty);
            for (i, config) in launch.pool(name, pool, settings, &worker_subnets)? {
                let path = Address::new()
                    .name("node")
                    .name("worker")
                    .key(pool.clone())
                    .index(i);
                specs.push(instance(path, config));
            }
        }
    }
    if get(c, &["controller", "on"]).and_then(Value::as_str) == Some("head") {
        let policy = controller_policy(&ws_name, name, state)?;
        specs.push(ResourceSpec::new(
            Address::new().name("controller_policy"),
            "aws_iam_role_policy",
            without_tags(with(
                launch.base.clone(),
                &[
                    ("role_name", Value::String(format!("{ws_name}-head-role"))),
                    ("name", Value::String(format!("tik-controller-{name}"))),
                    ("policy", Value::String(policy.to_string())),
                ],
            )),
        ));
    }
    Ok(specs)
}

/// Where a cluster's nodes go: the head's subnet and the workers' subnets. Subnets tik
/// made (`subnet["public"]`, `subnet["private-N"]`) or, in a shared VPC, the ones it
/// found there: the head in a public one, workers spread over the private.
fn cluster_subnets(ws: &Map) -> (Value, Vec<Value>) {
    match get(ws, &["vpc", "private_subnet_ids"]) {
        Some(Value::List(private)) => {
            let public = match get(ws, &["vpc", "public_subnet_ids"]) {
                Some(Value::List(p)) => p.first().cloned(),
                _ => None,
            };
            (
                public
                    .or_else(|| private.first().cloned())
                    .unwrap_or(Value::Unknown),
                private.clone(),
            )
        }
        Some(_) => (Value::Unknown, Vec::new()),
        None => {
            let subnet = |k: &str| {
                get(ws, &["subnet", k, "id"])
                    .cloned()
                    .unwrap_or(Value::Unknown)
            };
            let privates: Vec<Value> = match get(ws, &["subnet"]) {
                Some(Value::Object(m)) => m
                    .keys()
                    .filter(|k| k.starts_with("private-"))
                    .map(|k| subnet(k))
                    .collect(),
                _ => Vec::new(),
            };
            (subnet("public"), privates)
        }
    }
}

/// What every node of one cluster launches with unless its block says otherwise.
struct Launch {
    base: Map,
    image: Value,
    instance_type: Value,
    security_group: Value,
    key_name: String,
    ws_name: String,
    ssh: Map,
}

impl Launch {
    /// One `aws_instance`'s configuration: `settings` (the head block or a worker pool)
    /// over the head's image and type.
    fn node(
        &self,
        kind: &str,
        node_name: String,
        settings: &Map,
        subnet_id: Value,
        pool: Option<&str>,
    ) -> Result<Map, String> {
        let image = get(settings, &["image"])
            .cloned()
            .unwrap_or_else(|| self.image.clone());
        let itype = get(settings, &["instance_type"])
            .cloned()
            .unwrap_or_else(|| self.instance_type.clone());
        let disk = Value::Number(whole(get(settings, &["disk_gb"]), "disk_gb", Some(100))? as f64);
        let hash = launch_hash(&[&image, &itype, &disk, &subnet_id]);
        let mut m = with(
            self.base.clone(),
            &[
                ("name", Value::String(node_name)),
                ("image", image),
                ("instance_type", itype),
                ("disk_gb", disk),
                ("subnet_id", subnet_id),
                ("security_group_id", self.security_group.clone()),
                ("key_name", Value::from(self.key_name.as_str())),
                (
                    "iam_instance_profile",
                    Value::String(format!("{}-{kind}-profile", self.ws_name)),
                ),
            ],
        );
        // Until the subnet exists the launch is not fully known, and neither is its hash.
        let hash = if m.values().any(Value::has_unknown) {
            Value::Unknown
        } else {
            Value::String(hash)
        };
        // How tik logs in to it; workers, in private subnets, through the head unless
        // tik runs where private addresses are reachable.
        m.extend(self.ssh.clone());
        if kind == "worker" && self.ssh.get("ssh_internal_ips") != Some(&Value::Bool(true)) {
            m.insert("public_address".into(), Value::Bool(false));
        }
        if let Some(Value::Object(tags)) = m.get_mut("tags") {
            tags.insert("tik:node-kind".into(), Value::from(kind));
            if let Some(p) = pool {
                tags.insert("tik:pool".into(), Value::from(p));
            }
            tags.insert("tik:launch-hash".into(), hash);
        }
        Ok(m)
    }

    /// The `min` workers of one pool, numbered, spread over the private subnets one
    /// availability zone after another.
    fn pool(
        &self,
        cluster: &str,
        pool: &str,
        settings: &Map,
        subnets: &[Value],
    ) -> Result<Vec<(u64, Map)>, ExpandError> {
        let at = |key: &'static str| move |e: String| ExpandError::at(&["workers", pool, key], e);
        let min = whole(
            get(settings, &["min"]),
            &format!("workers \"{pool}\" min"),
            None,
        )
        .map_err(at("min"))?;
        let max = whole(
            get(settings, &["max"]),
            &format!("workers \"{pool}\" max"),
            Some(min),
        )
        .map_err(at("max"))?;
        if min > max {
            return Err(at("max")(format!(
                "workers \"{pool}\": min ({min}) is more than max ({max})"
            )));
        }
        // The size `tik scale` asked, which the engine keeps within the bounds.
        let size = whole(
            get(settings, &["size"]),
            &format!("workers \"{pool}\" size"),
            Some(min),
        )
        .map_err(at("min"))?
        .clamp(min, max);
        (0..size)
            .map(|i| {
                let subnet_id = match subnets.len() {
                    0 => Value::Unknown,
                    n => subnets[i as usize % n].clone(),
                };
                let mut config = self.node(
                    "worker",
                    format!("{cluster}-{pool}-{i}"),
                    settings,
                    subnet_id,
                    Some(pool),
                )?;
                for key in ["spot", "spot_fallback"] {
                    if let Some(v) = get(settings, &[key]).filter(|v| !matches!(v, Value::Null)) {
                        config.insert(key.into(), v.clone());
                    }
                }
                Ok((i, config))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_with(ssh: Option<Map>) -> Map {
        let mut c = obj(&[
            (
                "workspace",
                Value::Object(obj(&[
                    ("name", Value::from("lab")),
                    ("region", Value::from("us-east-1")),
                ])),
            ),
            (
                "head",
                Value::Object(obj(&[
                    ("image", Value::from("ami-1")),
                    ("instance_type", Value::from("m5.large")),
                ])),
            ),
            (
                "workers",
                Value::Object(obj(&[(
                    "w",
                    Value::Object(obj(&[("min", Value::Number(1.0))])),
                )])),
            ),
        ]);
        if let Some(s) = ssh {
            c.insert("ssh".into(), Value::Object(s));
        }
        c
    }

    fn node<'s>(specs: &'s [ResourceSpec], path: &str) -> &'s Map {
        &specs
            .iter()
            .find(|s| s.path.to_string() == path)
            .unwrap_or_else(|| panic!("{path} is expanded"))
            .config
    }

    #[test]
    fn workers_are_reached_through_the_head_unless_private_addresses_are_reachable() {
        let specs = cluster("c", &cluster_with(None), None).unwrap();
        let head = node(&specs, "node.head");
        let worker = node(&specs, "node.worker[\"w\"][0]");
        assert_eq!(head["ssh_user"], Value::from("ubuntu"));
        assert_eq!(head["ssh_port"], Value::Number(22.0));
        assert_eq!(head.get("public_address"), None);
        assert_eq!(worker["public_address"], Value::Bool(false));
        let spec = specs
            .iter()
            .find(|s| s.path.to_string() == "node.head")
            .unwrap();
        assert!(
            spec.refs
                .iter()
                .any(|r| r.attribute == "ssh_private_key" && r.sibling_attribute == "private_key"),
            "the key tik makes is the one it logs in with"
        );

        let internal = cluster_with(Some(obj(&[("use_internal_ips", Value::Bool(true))])));
        let specs = cluster("c", &internal, None).unwrap();
        let worker = node(&specs, "node.worker[\"w\"][0]");
        assert_eq!(worker.get("public_address"), None);
        assert_eq!(worker["ssh_internal_ips"], Value::Bool(true));
    }

    #[test]
    fn ssh_settings_that_cannot_work_are_refused_with_the_fix() {
        let err = |pairs: &[(&str, Value)]| {
            cluster("c", &cluster_with(Some(obj(pairs))), None)
                .unwrap_err()
                .message
        };
        let e = err(&[("usr", Value::from("x"))]);
        assert!(e.contains("takes no usr: did you mean \"user\"?"), "{e}");
        let e = err(&[("private_key", Value::from("x"))]);
        assert!(
            e.contains("it takes user, port, public_key, private_key_file"),
            "{e}"
        );
        assert!(err(&[("port", Value::Number(0.0))]).contains("from 1 to 65535"));
        assert!(err(&[("user", Value::Number(1.0))]).contains("user = \"ubuntu\""));
        let e = err(&[("private_key_file", Value::from("~/.ssh/id"))]);
        assert!(e.contains("give its public half as ssh.public_key"), "{e}");
        assert!(cluster(
            "c",
            &cluster_with(Some(obj(&[
                ("private_key_file", Value::from("~/.ssh/id")),
                ("public_key", Value::from("ssh-ed25519 AAAA me")),
            ]))),
            None
        )
        .is_ok());
    }

    #[test]
    fn a_head_that_runs_the_controller_has_its_role_reach_the_nodes_and_the_state() {
        let policy_of = |specs: &[ResourceSpec]| -> Option<serde_json::Value> {
            let spec = specs
                .iter()
                .find(|s| s.type_name == "aws_iam_role_policy")?;
            assert_eq!(spec.config["role_name"], Value::from("lab-head-role"));
            assert_eq!(spec.config["name"], Value::from("tik-controller-c"));
            serde_json::from_str(spec.config["policy"].as_str().unwrap()).ok()
        };
        // None without controller { on = "head" }.
        let mut c = cluster_with(None);
        assert!(policy_of(&cluster("c", &c, None).unwrap()).is_none());
        c.insert(
            "controller".into(),
            Value::Object(obj(&[("on", Value::from("head"))])),
        );
        let state = StateAccess::S3 {
            bucket: "team".into(),
            key: "prod/etl.tikstate".into(),
            kms_keys: vec!["arn:aws:kms:us-east-1:1:key/k".into(), "alias/state".into()],
        };
        let policy = policy_of(&cluster("c", &c, Some(&state)).unwrap()).unwrap();
        let text = policy.to_string();
        for needed in [
            "\"ec2:RunInstances\"",
            "\"ec2:TerminateInstances\"",
            "\"ec2:Describe*\"",
            "\"iam:GetAccountAuthorizationDetails\"",
            "arn:aws:iam::*:role/tik/lab-worker-role",
            "\"aws:ResourceTag/tik:cluster\":\"c\"",
            "arn:aws:s3:::team/prod/etl.tikstate*",
            "\"arn:aws:s3:::team\"",
            "arn:aws:kms:us-east-1:1:key/k",
        ] {
            assert!(text.contains(needed), "{needed}: {text}");
        }
        // Nothing of another workspace's roles, nor of other objects of the bucket.
        assert!(!text.contains("arn:aws:s3:::team/*"), "{text}");
        // A backend the head's role cannot reach is refused where the cluster is.
        let e = cluster("c", &c, Some(&StateAccess::Other("gcs".into())))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the state is in a gcs backend; keep it in s3"),
            "{e}"
        );
    }
}
