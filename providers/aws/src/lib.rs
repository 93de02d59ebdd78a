//! tik-provider-aws: workspaces and clusters on EC2, through the real aws-sdk-* crates.
//!
//! A workspace lowers into a VPC, an internet gateway, a public and private subnets,
//! route tables, and a security group with its rules; a cluster into a key pair and
//! instances. Every object carries the tags `tik:address` and `tik:lineage`, so one
//! that a crash left unrecorded is found again. Each resource type is read with one
//! filtered Describe call (per page), never one call per resource.
//!
//! ```no_run
//! let provider = tik_provider_aws::AwsProvider::default();
//! let calls_so_far = provider.api_calls();
//! ```

mod attrs;
mod clients;
mod compute;
mod errors;
mod expand;
mod gateways;
mod iam;
mod network;
mod orphans;
mod peering;
mod security;
mod shared;
mod storage;

use async_trait::async_trait;
use attrs::{filter, opt_s, tag_value, target, ADDRESS_TAG, LINEAGE_TAG};
use clients::{ClientCache, Target};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tik_engine::provider::{
    AttributeSchema as A, BlockKind, ChangeRequest, ExpandError, ExpandRequest, Provider,
    ProviderError, ReadRequest, ResourceSchema, ResourceSpec, Schema, HALF_MADE,
};
use tik_engine::value::{Map, Value};

/// An object as a Describe call found it, with the address tag it carries.
pub(crate) struct Found {
    attrs: Map,
    address: Option<String>,
}

impl Found {
    fn new(attrs: Map, tags: &[aws_sdk_ec2::types::Tag]) -> Self {
        Found {
            attrs,
            address: tag_value(tags, ADDRESS_TAG).map(str::to_string),
        }
    }
}

#[derive(Default)]
pub struct AwsProvider {
    clients: ClientCache,
    /// Route tables read in this refresh: route tables, routes and associations are
    /// three types but one Describe call.
    route_tables: PerRefresh<(Target, Vec<String>), Vec<aws_sdk_ec2::types::RouteTable>>,
    /// IAM's roles with their profiles, read in this refresh: roles, profiles and the
    /// orphan search share one listing.
    roles: PerRefresh<Target, Vec<aws_sdk_iam::types::RoleDetail>>,
    /// Where this run's state is, for the role of a head that runs tik's controller.
    state: std::sync::Mutex<Option<StateAccess>>,
}

/// Where the state a controller on a head reads and writes is kept, as the head's
/// role must be allowed to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateAccess {
    /// An S3 backend: its bucket, its key (the journal, lock and records are beside
    /// it), and the KMS keys it encrypts with (the objects' or the state's own).
    S3 {
        bucket: String,
        key: String,
        kms_keys: Vec<String>,
    },
    /// Another backend, by kind: a head on AWS has no credentials for it.
    Other(String),
}

/// Results read at most once per refresh, whichever type asks first.
struct PerRefresh<K, T>(std::sync::Mutex<HashMap<K, Once<T>>>);

type Once<T> = Arc<tokio::sync::OnceCell<Result<T, ProviderError>>>;

impl<K, T> Default for PerRefresh<K, T> {
    fn default() -> Self {
        PerRefresh(Default::default())
    }
}

impl<K: std::hash::Hash + Eq, T: Clone> PerRefresh<K, T> {
    async fn get<Fut: Future<Output = Result<T, ProviderError>>>(
        &self,
        key: K,
        read: impl FnOnce() -> Fut,
    ) -> Result<T, ProviderError> {
        let cell = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(read).await.clone()
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl AwsProvider {
    /// Tells where the state is: a cluster whose head runs the controller gives its
    /// head's role access to it.
    pub fn set_state(&self, access: StateAccess) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(access);
    }

    /// How many API operations this provider has made (retries not counted).
    pub fn api_calls(&self) -> u64 {
        self.clients.calls.get()
    }

    /// API operations made so far, by operation name.
    pub fn api_calls_by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        self.clients.calls.by_operation()
    }

    /// Reads one type by id with a filtered Describe per region, plus one by address tag
    /// for objects whose create was interrupted before their id was recorded.
    async fn by_filter<F, Fut>(
        &self,
        items: &[ReadRequest],
        id_filter: &str,
        fetch: F,
    ) -> Result<Vec<Option<Map>>, ProviderError>
    where
        F: Fn(aws_sdk_ec2::Client, Vec<aws_sdk_ec2::types::Filter>) -> Fut,
        Fut: Future<Output = Result<Vec<Found>, ProviderError>>,
    {
        self.by_filter_on(items, id_filter, "id", fetch).await
    }

    /// Like `by_filter`, filtering on another attribute of the items (an endpoint's
    /// `vpc_id`, where the API cannot filter on the endpoint's own id); matches stay by id.
    async fn by_filter_on<F, Fut>(
        &self,
        items: &[ReadRequest],
        filter_name: &str,
        key: &str,
        fetch: F,
    ) -> Result<Vec<Option<Map>>, ProviderError>
    where
        F: Fn(aws_sdk_ec2::Client, Vec<aws_sdk_ec2::types::Filter>) -> Fut,
        Fut: Future<Output = Result<Vec<Found>, ProviderError>>,
    {
        let mut results = vec![None; items.len()];
        for (t, idxs) in by_target(items)? {
            let ec2 = self.clients.get(&t).await.ec2;
            let mut keys: Vec<String> = idxs
                .iter()
                .filter(|&&i| opt_s(&items[i].attributes, "id").is_some())
                .filter_map(|&i| opt_s(&items[i].attributes, key).map(str::to_string))
                .collect();
            keys.sort();
            keys.dedup();
            // Objects whose create was interrupted before their id was recorded are found
            // by one read of the lineage's objects of this type, matched on their address
            // tag here: EC2's tag filters take `*` and `?` as wildcards (and moto `[` too),
            // and addresses hold brackets.
            let mut pending: Vec<String> = idxs
                .iter()
                .filter(|&&i| opt_s(&items[i].attributes, "id").is_none())
                .map(|&i| items[i].lineage.clone())
                .collect();
            pending.sort();
            pending.dedup();
            let mut found = Vec::new();
            if !keys.is_empty() {
                found.extend(fetch(ec2.clone(), vec![filter(filter_name, keys)]).await?);
            }
            if !pending.is_empty() {
                found.extend(
                    fetch(
                        ec2.clone(),
                        vec![filter(&format!("tag:{LINEAGE_TAG}"), pending)],
                    )
                    .await?,
                );
            }
            for i in idxs {
                let item = &items[i];
                let hit = match opt_s(&item.attributes, "id") {
                    Some(id) => found.iter().find(|f| opt_s(&f.attrs, "id") == Some(id)),
                    // One that is still there before one that is gone (a NAT gateway
                    // replaced earlier keeps its address tag while AWS lists it).
                    None => found
                        .iter()
                        .filter(|f| f.address.as_deref() == Some(&item.address.to_string()))
                        .min_by_key(|f| f.attrs.contains_key(gateways::GONE)),
                };
                results[i] = hit.map(|f| overlay(&item.attributes, &f.attrs));
            }
        }
        Ok(results)
    }

    /// Reads types that live inside another object (routes, associations, rules).
    async fn nested<F, Fut>(
        &self,
        items: &[ReadRequest],
        read: F,
    ) -> Result<Vec<Option<Map>>, ProviderError>
    where
        F: Fn(aws_sdk_ec2::Client, Vec<Map>) -> Fut,
        Fut: Future<Output = Result<Vec<Option<Map>>, ProviderError>>,
    {
        let mut results = vec![None; items.len()];
        for (t, idxs) in by_target(items)? {
            let ec2 = self.clients.get(&t).await.ec2;
            let group: Vec<Map> = idxs.iter().map(|&i| items[i].attributes.clone()).collect();
            for (i, found) in idxs.into_iter().zip(read(ec2, group).await?) {
                results[i] = found;
            }
        }
        Ok(results)
    }
}

impl AwsProvider {
    /// The route tables with these ids, described once per refresh whichever type asks.
    async fn route_tables(
        &self,
        target: &Target,
        mut ids: Vec<String>,
    ) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ec2 = self.clients.get(target).await.ec2;
        self.route_tables
            .get((target.clone(), ids.clone()), || async move {
                network::describe_route_tables(&ec2, vec![filter("route-table-id", ids)]).await
            })
            .await
    }

    /// tik's IAM roles, listed once per refresh.
    async fn roles(
        &self,
        target: &Target,
    ) -> Result<Vec<aws_sdk_iam::types::RoleDetail>, ProviderError> {
        let iam = self.clients.get(target).await.iam;
        self.roles
            .get(
                target.clone(),
                || async move { iam::list_roles(&iam).await },
            )
            .await
    }

    /// NAT gateways. One that is gone is gone, unless it leaves the elastic IP it held
    /// (a delete killed before ReleaseAddress): then it is read as half made, so that
    /// its delete releases the address.
    async fn read_nat_gateways(
        &self,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let mut found = self
            .by_filter(items, "nat-gateway-id", |c, f| async move {
                gateways::read_nat_gateways(&c, f).await
            })
            .await?;
        for attrs in found.iter_mut() {
            if attrs
                .as_mut()
                .is_some_and(|a| a.shift_remove(gateways::GONE).is_some())
            {
                match attrs.as_mut() {
                    Some(a) if opt_s(a, "allocation_id").is_some() => {
                        a.insert(HALF_MADE.to_string(), Value::Bool(true));
                    }
                    _ => *attrs = None,
                }
            }
        }
        Ok(found)
    }

    /// Key pairs, each with the private half tik recorded for it (or none).
    async fn read_key_pairs(
        &self,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let mut found = self
            .by_filter(items, "key-pair-id", |c, f| async move {
                compute::read_key_pairs(&c, f).await
            })
            .await?;
        for (item, attrs) in items.iter().zip(found.iter_mut()) {
            let Some(attrs) = attrs else { continue };
            // A key pair tik made whose create was cut short: its private half
            // was only ever in CreateKeyPair's answer, which no one recorded, so
            // nodes launched with it could never be logged in to. Made anew.
            if item.pending && opt_s(&item.attributes, "public_key").is_none() {
                attrs.insert(HALF_MADE.to_string(), Value::Bool(true));
            }
            // An imported key has no private half here (nor had one recorded
            // before nodes took it to log in with).
            attrs
                .entry("private_key".to_string())
                .or_insert(Value::Null);
        }
        Ok(found)
    }

    /// tik's IAM roles or instance profiles, from one listing of roles per target.
    async fn read_iam(
        &self,
        items: &[ReadRequest],
        type_name: &str,
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let mut results = vec![None; items.len()];
        for (t, idxs) in by_target(items)? {
            let roles = self.roles(&t).await?;
            let group = idxs.iter().map(|&i| items[i].attributes.clone()).collect();
            let found = if type_name == "aws_iam_role" {
                iam::read_roles(&roles, group)
            } else if type_name == "aws_iam_role_policy" {
                iam::read_role_policies(&roles, group)
            } else {
                let found = iam::read_profiles(&roles, &[], group.clone());
                if found.iter().all(Option::is_some) {
                    found
                } else {
                    let iam_client = self.clients.get(&t).await.iam;
                    let lone = iam::list_profiles(&iam_client).await?;
                    iam::read_profiles(&roles, &lone, group)
                }
            };
            for (i, f) in idxs.into_iter().zip(found) {
                results[i] = f.map(|f| overlay(&items[i].attributes, &f));
            }
        }
        Ok(results)
    }

    /// Route tables, routes or associations, from the tables their items name.
    async fn in_route_tables(
        &self,
        items: &[ReadRequest],
        kind: &str,
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        let mut results = vec![None; items.len()];
        for (t, idxs) in by_target(items)? {
            let group: Vec<Map> = idxs.iter().map(|&i| items[i].attributes.clone()).collect();
            let key = if kind == "aws_route_table" {
                "id"
            } else {
                "route_table_id"
            };
            let tables = self
                .route_tables(&t, network::distinct(&group, key))
                .await?;
            let found = match kind {
                "aws_route" => network::read_routes(&tables, &group),
                "aws_route_table_association" => network::read_associations(&tables, &group),
                _ => group
                    .iter()
                    .map(|item| {
                        let id = opt_s(item, "id")?;
                        let table = tables.iter().find(|t| t.route_table_id() == Some(id))?;
                        Some(overlay(item, &network::route_table_attrs(table)))
                    })
                    .collect(),
            };
            for (i, f) in idxs.into_iter().zip(found) {
                results[i] = f;
            }
        }
        Ok(results)
    }

    /// Reads a type whose API is not EC2's (IAM, S3): one listing per region and endpoint.
    async fn listed<F, Fut>(
        &self,
        items: &[ReadRequest],
        read: F,
    ) -> Result<Vec<Option<Map>>, ProviderError>
    where
        F: Fn(clients::Clients, Vec<Map>) -> Fut,
        Fut: Future<Output = Result<Vec<Option<Map>>, ProviderError>>,
    {
        let mut results = vec![None; items.len()];
        for (t, idxs) in by_target(items)? {
            let clients = self.clients.get(&t).await;
            let group: Vec<Map> = idxs.iter().map(|&i| items[i].attributes.clone()).collect();
            for (i, found) in idxs.into_iter().zip(read(clients, group).await?) {
                results[i] = found;
            }
        }
        Ok(results)
    }
}

/// Recorded attributes with what was read over them: what the API does not return
/// (region, endpoint, a private key) is kept; what it returns shows drift.
pub(crate) fn overlay(recorded: &Map, read: &Map) -> Map {
    let mut attrs = recorded.clone();
    for (k, v) in read {
        attrs.insert(k.clone(), v.clone());
    }
    attrs
}

fn by_target(items: &[ReadRequest]) -> Result<Vec<(Target, Vec<usize>)>, ProviderError> {
    let mut groups: HashMap<Target, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        groups.entry(target(&item.attributes)?).or_default().push(i);
    }
    Ok(groups.into_iter().collect())
}

fn place() -> Vec<A> {
    vec![A::required("region").force_new(), A::optional("endpoint")]
}

fn schema(type_name: &'static str, attrs: Vec<A>) -> ResourceSchema {
    let mut attributes = place();
    attributes.extend(attrs);
    ResourceSchema::new(type_name, attributes)
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn keeps_on_delete(&self, type_name: &str, attributes: &Map) -> bool {
        type_name == "aws_s3_bucket" && storage::kept_on_delete(attributes)
    }

    fn resource_types(&self) -> Vec<ResourceSchema> {
        let tagged = |mut v: Vec<A>| {
            v.push(A::optional("tags"));
            v.push(A::computed("id"));
            v
        };
        vec![
            schema(
                "aws_vpc",
                tagged(vec![A::required("name"), A::required("cidr").force_new()]),
            ),
            schema(
                "aws_internet_gateway",
                tagged(vec![A::required("name"), A::required("vpc_id").force_new()]),
            ),
            schema(
                "aws_subnet",
                tagged(vec![
                    A::required("name"),
                    A::required("vpc_id").force_new(),
                    A::required("cidr").force_new(),
                    A::required("availability_zone").force_new(),
                    A::optional("public").force_new(),
                ]),
            ),
            schema(
                "aws_route_table",
                tagged(vec![A::required("name"), A::required("vpc_id").force_new()]),
            ),
            schema(
                "aws_route",
                vec![
                    A::required("route_table_id").force_new(),
                    A::required("destination").force_new(),
                    A::optional("gateway_id").force_new(),
                    A::optional("nat_gateway_id").force_new(),
                    A::optional("vpc_peering_connection_id").force_new(),
                    A::computed("id"),
                ],
            ),
            schema(
                "aws_nat_gateway",
                tagged(vec![
                    A::required("name"),
                    A::required("subnet_id").force_new(),
                    A::computed("allocation_id"),
                    A::computed("public_ip"),
                ]),
            ),
            // Never planned from a configuration: an address a NAT gateway's create or
            // delete was cut short with, found as an orphan and released.
            schema("aws_elastic_ip", tagged(vec![A::computed("public_ip")])),
            schema(
                "aws_vpc_endpoint",
                tagged(vec![
                    A::required("name"),
                    A::required("vpc_id").force_new(),
                    A::required("service").force_new(),
                    A::required("route_table_id").force_new(),
                ]),
            ),
            schema(
                "aws_route_table_association",
                vec![
                    A::required("route_table_id").force_new(),
                    A::required("subnet_id").force_new(),
                    A::computed("id"),
                ],
            ),
            schema(
                "aws_vpc_peering_connection",
                tagged(vec![
                    A::required("name"),
                    A::required("vpc_id").force_new(),
                    A::required("peer_vpc_id").force_new(),
                    A::required("cidr").force_new(),
                    A::computed("peer_cidr"),
                    A::computed("peer_route_table_ids"),
                ]),
            ),
            schema(
                "aws_existing_vpc",
                vec![
                    A::required("vpc_id").force_new(),
                    A::computed("id"),
                    A::computed("cidr"),
                    A::computed("public_subnet_ids"),
                    A::computed("private_subnet_ids"),
                ],
            ),
            schema(
                "aws_iam_role",
                vec![
                    A::required("name").force_new(),
                    A::required("assume_policy").force_new(),
                    A::required("policy"),
                    A::optional("tags"),
                    A::computed("id"),
                    A::computed("arn"),
                ],
            ),
            schema(
                "aws_iam_role_policy",
                vec![
                    A::required("role_name").force_new(),
                    A::required("name").force_new(),
                    A::required("policy"),
                ],
            ),
            schema(
                "aws_iam_instance_profile",
                vec![
                    A::required("name").force_new(),
                    A::required("role_name").force_new(),
                    A::computed("id"),
                    A::computed("arn"),
                ],
            ),
            schema(
                "aws_s3_bucket",
                vec![
                    A::required("name").force_new(),
                    A::optional("keep_on_destroy"),
                    A::optional("encryption"),
                    A::optional("tags"),
                    A::computed("id"),
                ],
            ),
            schema(
                "aws_security_group",
                tagged(vec![
                    A::required("name").force_new(),
                    A::required("description").force_new(),
                    A::required("vpc_id").force_new(),
                ]),
            ),
            schema(
                "aws_security_group_rule",
                vec![
                    A::required("security_group_id").force_new(),
                    A::required("protocol").force_new(),
                    A::required("from_port").force_new(),
                    A::required("to_port").force_new(),
                    A::optional("cidr").force_new(),
                    A::optional("source_self").force_new(),
                    A::optional("description").force_new(),
                    A::computed("id"),
                ],
            ),
            schema(
                "aws_key_pair",
                tagged(vec![
                    A::required("name").force_new(),
                    A::optional("public_key").force_new(),
                    A::computed("fingerprint"),
                    A {
                        sensitive: true,
                        ..A::computed("private_key")
                    },
                ]),
            ),
            schema(
                "aws_instance",
                tagged(vec![
                    A::required("name"),
                    A::required("image").force_new(),
                    A::required("instance_type").force_new(),
                    A::required("disk_gb").force_new(),
                    A::required("subnet_id").force_new(),
                    A::required("security_group_id").force_new(),
                    A::optional("key_name").force_new(),
                    A::optional("iam_instance_profile").force_new(),
                    A::optional("spot").force_new(),
                    A::optional("spot_fallback"),
                    A::computed("lifecycle"),
                    A::computed("private_ip"),
                    A::computed("public_ip"),
                    // How tik logs in to it (see compute::set_connection).
                    A::optional("ssh_user"),
                    A::optional("ssh_port"),
                    A::optional("ssh_private_key_file"),
                    A::optional("ssh_internal_ips"),
                    A::optional("public_address"),
                    A {
                        sensitive: true,
                        ..A::optional("ssh_private_key")
                    },
                    A {
                        sensitive: true,
                        ..A::computed("connection")
                    },
                ]),
            ),
        ]
    }

    fn block_schema(&self, kind: BlockKind) -> Schema {
        expand::block_schema(kind)
    }

    fn expand(&self, request: &ExpandRequest<'_>) -> Result<Vec<ResourceSpec>, ExpandError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        expand::expand(request, state.as_ref())
    }

    async fn read(
        &self,
        type_name: &str,
        items: &[ReadRequest],
    ) -> Result<Vec<Option<Map>>, ProviderError> {
        match type_name {
            "aws_vpc" => {
                self.by_filter(items, "vpc-id", |c, f| async move {
                    network::read_vpcs(&c, f).await
                })
                .await
            }
            "aws_internet_gateway" => {
                self.by_filter(items, "internet-gateway-id", |c, f| async move {
                    network::read_internet_gateways(&c, f).await
                })
                .await
            }
            "aws_subnet" => {
                self.by_filter(items, "subnet-id", |c, f| async move {
                    network::read_subnets(&c, f).await
                })
                .await
            }
            // A table whose create was interrupted has no id yet: it is looked up by its tag.
            "aws_route_table" if items.iter().any(|i| opt_s(&i.attributes, "id").is_none()) => {
                self.by_filter(items, "route-table-id", |c, f| async move {
                    network::read_route_tables(&c, f).await
                })
                .await
            }
            "aws_route_table" | "aws_route" | "aws_route_table_association" => {
                self.in_route_tables(items, type_name).await
            }
            "aws_vpc_peering_connection" => {
                self.by_filter(items, "vpc-peering-connection-id", |c, f| async move {
                    peering::read_peerings(&c, f).await
                })
                .await
            }
            "aws_nat_gateway" => self.read_nat_gateways(items).await,
            "aws_elastic_ip" => {
                self.by_filter(items, "allocation-id", |c, f| async move {
                    gateways::read_addresses(&c, f).await
                })
                .await
            }
            "aws_vpc_endpoint" => {
                self.by_filter_on(items, "vpc-id", "vpc_id", |c, f| async move {
                    gateways::read_endpoints(&c, f).await
                })
                .await
            }
            "aws_security_group" => {
                self.by_filter(items, "group-id", |c, f| async move {
                    security::read_groups(&c, f).await
                })
                .await
            }
            "aws_key_pair" => self.read_key_pairs(items).await,
            "aws_instance" => {
                let mut found = self
                    .by_filter(items, "instance-id", |c, f| async move {
                        compute::read_instances(&c, f).await
                    })
                    .await?;
                found.iter_mut().flatten().for_each(compute::set_connection);
                Ok(found)
            }
            "aws_existing_vpc" => {
                self.listed(items, |c, i| async move {
                    shared::read_existing(&c.ec2, i).await
                })
                .await
            }
            "aws_iam_role" | "aws_iam_instance_profile" | "aws_iam_role_policy" => {
                self.read_iam(items, type_name).await
            }
            "aws_s3_bucket" => {
                self.listed(items, |c, i| async move {
                    storage::read_buckets(&c.s3, i).await
                })
                .await
            }
            "aws_security_group_rule" => {
                self.nested(
                    items,
                    |c, i| async move { security::read_rules(&c, &i).await },
                )
                .await
            }
            other => Err(ProviderError::new(format!(
                "the aws provider has no resource type {other}"
            ))),
        }
    }

    async fn begin_refresh(&self) {
        self.route_tables.clear();
        self.roles.clear();
    }

    async fn discover(
        &self,
        lineage: &str,
        known: &[ReadRequest],
    ) -> Result<Vec<tik_engine::provider::Orphan>, ProviderError> {
        // What records name: their ids, and the elastic IPs their NAT gateways hold.
        let ids: std::collections::HashSet<String> = known
            .iter()
            .flat_map(|k| {
                let held = opt_s(&k.attributes, "allocation_id").map(str::to_string);
                orphans::id_of(&k.attributes).into_iter().chain(held)
            })
            .collect();
        let mut found = Vec::new();
        for (t, idxs) in by_target(known)? {
            let ec2 = self.clients.get(&t).await.ec2;
            let place = orphans::place_of(&known[idxs[0]].attributes);
            found.extend(orphans::discover(&ec2, lineage, &ids, &place).await?);
            found.extend(iam::orphans(&self.roles(&t).await?, lineage, &ids, &place));
            let s3 = self.clients.get(&t).await.s3;
            found.extend(storage::orphans(&s3, lineage, &ids, &place).await?);
        }
        Ok(found)
    }

    async fn apply(&self, change: ChangeRequest) -> Result<Map, ProviderError> {
        let clients = self.clients.get(&target(&change.planned)?).await;
        let ec2 = clients.ec2;
        let mut attrs = match change.type_name.as_str() {
            "aws_existing_vpc" => shared::apply_existing(&ec2, &change).await,
            "aws_iam_role" => iam::apply_role(&clients.iam, &change).await,
            "aws_iam_instance_profile" => iam::apply_profile(&clients.iam, &change).await,
            "aws_iam_role_policy" => iam::apply_role_policy(&clients.iam, &change).await,
            "aws_s3_bucket" => storage::apply_bucket(&clients.s3, &change).await,
            "aws_vpc" => network::apply_vpc(&ec2, &change).await,
            "aws_internet_gateway" => network::apply_internet_gateway(&ec2, &change).await,
            "aws_subnet" => network::apply_subnet(&ec2, &change).await,
            "aws_route_table" => network::apply_route_table(&ec2, &change).await,
            "aws_route" => network::apply_route(&ec2, &change).await,
            "aws_route_table_association" => network::apply_association(&ec2, &change).await,
            "aws_vpc_peering_connection" => peering::apply_peering(&ec2, &change).await,
            "aws_nat_gateway" => gateways::apply_nat_gateway(&ec2, &change).await,
            "aws_elastic_ip" => gateways::apply_address(&ec2, &change).await,
            "aws_vpc_endpoint" => gateways::apply_endpoint(&ec2, &change).await,
            "aws_security_group" => security::apply_group(&ec2, &change).await,
            "aws_security_group_rule" => security::apply_rule(&ec2, &change).await,
            "aws_key_pair" => compute::apply_key_pair(&ec2, &change).await,
            "aws_instance" => compute::apply_instance(&ec2, &change).await,
            other => Err(ProviderError::new(format!(
                "the aws provider has no resource type {other}"
            ))),
        }?;
        if !attrs.is_empty() {
            network::keep(&change.planned, &mut attrs);
        }
        Ok(attrs)
    }
}
