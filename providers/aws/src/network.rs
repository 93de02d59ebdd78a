//! VPC, internet gateway, subnets, route tables, routes and route table associations.

use crate::attrs::{carry, int, opt_s, read_tags, retag, s, tag_spec};
use crate::errors::{api_error, gone_ok};
use crate::Found;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, RouteTable};
use aws_sdk_ec2::Client;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

fn id_of(attrs: &Map) -> Result<&str, ProviderError> {
    s(attrs, "id")
}

fn created(change: &ChangeRequest, id: &str) -> Map {
    let mut attrs = change.planned.clone();
    attrs.insert("id".into(), Value::String(id.to_string()));
    attrs
}

pub async fn read_vpcs(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_vpcs()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for v in page.map_err(|e| api_error("DescribeVpcs", e))?.vpcs() {
            let mut attrs = Map::new();
            attrs.insert("id".into(), Value::from(v.vpc_id().unwrap_or_default()));
            attrs.insert(
                "cidr".into(),
                Value::from(v.cidr_block().unwrap_or_default()),
            );
            read_tags(v.tags(), &mut attrs);
            out.push(Found::new(attrs, v.tags()));
        }
    }
    Ok(out)
}

pub async fn apply_vpc(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_vpc()
                .cidr_block(s(a, "cidr")?)
                .tag_specifications(tag_spec(ResourceType::Vpc, change))
                .send()
                .await
                .map_err(|e| api_error("CreateVpc", e))?;
            let id = out
                .vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_string();
            let on = || AttributeBooleanValue::builder().value(true).build();
            ec2.modify_vpc_attribute()
                .vpc_id(&id)
                .enable_dns_support(on())
                .send()
                .await
                .map_err(|e| api_error("ModifyVpcAttribute", e))?;
            ec2.modify_vpc_attribute()
                .vpc_id(&id)
                .enable_dns_hostnames(on())
                .send()
                .await
                .map_err(|e| api_error("ModifyVpcAttribute", e))?;
            Ok(created(change, &id))
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => gone_ok("DeleteVpc", ec2.delete_vpc().vpc_id(id_of(a)?).send().await),
    }
}

/// The prior attributes with the planned ones over them: an in-place update's result.
pub fn merged(change: &ChangeRequest) -> Map {
    let mut attrs = change.prior.clone().unwrap_or_default();
    for (k, v) in &change.planned {
        attrs.insert(k.clone(), v.clone());
    }
    attrs
}

pub async fn read_internet_gateways(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_internet_gateways()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for g in page
            .map_err(|e| api_error("DescribeInternetGateways", e))?
            .internet_gateways()
        {
            let mut attrs = Map::new();
            attrs.insert(
                "id".into(),
                Value::from(g.internet_gateway_id().unwrap_or_default()),
            );
            let vpc = g
                .attachments()
                .first()
                .and_then(|a| a.vpc_id())
                .map_or(Value::Null, Value::from);
            attrs.insert("vpc_id".into(), vpc);
            read_tags(g.tags(), &mut attrs);
            out.push(Found::new(attrs, g.tags()));
        }
    }
    Ok(out)
}

pub async fn apply_internet_gateway(
    ec2: &Client,
    change: &ChangeRequest,
) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(ResourceType::InternetGateway, change))
                .send()
                .await
                .map_err(|e| api_error("CreateInternetGateway", e))?;
            let id = out
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .unwrap_or_default()
                .to_string();
            ec2.attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(s(a, "vpc_id")?)
                .send()
                .await
                .map_err(|e| api_error("AttachInternetGateway", e))?;
            Ok(created(change, &id))
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => {
            let id = id_of(a)?;
            if let Some(vpc) = opt_s(a, "vpc_id") {
                gone_ok(
                    "DetachInternetGateway",
                    ec2.detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(vpc)
                        .send()
                        .await,
                )?;
            }
            gone_ok(
                "DeleteInternetGateway",
                ec2.delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send()
                    .await,
            )
        }
    }
}

pub async fn read_subnets(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_subnets()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for n in page.map_err(|e| api_error("DescribeSubnets", e))?.subnets() {
            let mut attrs = Map::new();
            attrs.insert("id".into(), Value::from(n.subnet_id().unwrap_or_default()));
            attrs.insert("vpc_id".into(), Value::from(n.vpc_id().unwrap_or_default()));
            attrs.insert(
                "cidr".into(),
                Value::from(n.cidr_block().unwrap_or_default()),
            );
            attrs.insert(
                "availability_zone".into(),
                Value::from(n.availability_zone().unwrap_or_default()),
            );
            attrs.insert(
                "public".into(),
                Value::Bool(n.map_public_ip_on_launch().unwrap_or(false)),
            );
            read_tags(n.tags(), &mut attrs);
            out.push(Found::new(attrs, n.tags()));
        }
    }
    Ok(out)
}

pub async fn apply_subnet(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_subnet()
                .vpc_id(s(a, "vpc_id")?)
                .cidr_block(s(a, "cidr")?)
                .availability_zone(s(a, "availability_zone")?)
                .tag_specifications(tag_spec(ResourceType::Subnet, change))
                .send()
                .await
                .map_err(|e| api_error("CreateSubnet", e))?;
            let id = out
                .subnet()
                .and_then(|n| n.subnet_id())
                .unwrap_or_default()
                .to_string();
            if a.get("public").and_then(Value::as_bool) == Some(true) {
                ec2.modify_subnet_attribute()
                    .subnet_id(&id)
                    .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
                    .send()
                    .await
                    .map_err(|e| api_error("ModifySubnetAttribute", e))?;
            }
            Ok(created(change, &id))
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => gone_ok(
            "DeleteSubnet",
            ec2.delete_subnet().subnet_id(id_of(a)?).send().await,
        ),
    }
}

/// Route tables with their routes and associations, read in one call for all three types.
pub async fn describe_route_tables(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_route_tables()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        out.extend(
            page.map_err(|e| api_error("DescribeRouteTables", e))?
                .route_tables()
                .iter()
                .cloned(),
        );
    }
    Ok(out)
}

/// A route table's attributes, as read.
pub fn route_table_attrs(t: &RouteTable) -> Map {
    let mut attrs = Map::new();
    attrs.insert(
        "id".into(),
        Value::from(t.route_table_id().unwrap_or_default()),
    );
    attrs.insert("vpc_id".into(), Value::from(t.vpc_id().unwrap_or_default()));
    read_tags(t.tags(), &mut attrs);
    attrs
}

pub async fn read_route_tables(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    Ok(describe_route_tables(ec2, filters)
        .await?
        .iter()
        .map(|t| Found::new(route_table_attrs(t), t.tags()))
        .collect())
}

pub async fn apply_route_table(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_route_table()
                .vpc_id(s(a, "vpc_id")?)
                .tag_specifications(tag_spec(ResourceType::RouteTable, change))
                .send()
                .await
                .map_err(|e| api_error("CreateRouteTable", e))?;
            let id = out
                .route_table()
                .and_then(|t| t.route_table_id())
                .unwrap_or_default()
                .to_string();
            Ok(created(change, &id))
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => gone_ok(
            "DeleteRouteTable",
            ec2.delete_route_table()
                .route_table_id(id_of(a)?)
                .send()
                .await,
        ),
    }
}

/// Routes, each found by its table and destination among the tables read.
pub fn read_routes(found: &[RouteTable], items: &[Map]) -> Vec<Option<Map>> {
    items
        .iter()
        .map(|item| {
            let (table, dest) = (opt_s(item, "route_table_id")?, opt_s(item, "destination")?);
            let t = found.iter().find(|t| t.route_table_id() == Some(table))?;
            let r = t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some(dest))?;
            let mut attrs = item.clone();
            attrs.insert("id".into(), Value::String(format!("{table}_{dest}")));
            // A route goes to a gateway or to a NAT gateway: only the kind it has is read.
            if item.contains_key("gateway_id") {
                attrs.insert(
                    "gateway_id".into(),
                    r.gateway_id().map_or(Value::Null, Value::from),
                );
            }
            if item.contains_key("nat_gateway_id") {
                attrs.insert(
                    "nat_gateway_id".into(),
                    r.nat_gateway_id().map_or(Value::Null, Value::from),
                );
            }
            if item.contains_key("vpc_peering_connection_id") {
                attrs.insert(
                    "vpc_peering_connection_id".into(),
                    r.vpc_peering_connection_id()
                        .map_or(Value::Null, Value::from),
                );
            }
            Some(attrs)
        })
        .collect()
}

pub async fn apply_route(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let (table, dest) = (s(a, "route_table_id")?, s(a, "destination")?);
    match change.operation {
        Operation::Create | Operation::Update => {
            let mut route = ec2
                .create_route()
                .route_table_id(table)
                .destination_cidr_block(dest);
            route = match (opt_s(a, "gateway_id"), opt_s(a, "nat_gateway_id"), opt_s(a, "vpc_peering_connection_id")) {
                (Some(g), None, None) => route.gateway_id(g),
                (None, Some(n), None) => route.nat_gateway_id(n),
                (None, None, Some(p)) => route.vpc_peering_connection_id(p),
                _ => {
                    return Err(ProviderError::new(
                        "a route goes to exactly one of gateway_id, nat_gateway_id and vpc_peering_connection_id",
                    ))
                }
            };
            route
                .send()
                .await
                .map_err(|e| api_error("CreateRoute", e))?;
            Ok(created(change, &format!("{table}_{dest}")))
        }
        Operation::Delete => gone_ok(
            "DeleteRoute",
            ec2.delete_route()
                .route_table_id(table)
                .destination_cidr_block(dest)
                .send()
                .await,
        ),
    }
}

/// Associations, by id or (after an interrupted create) by subnet, among the tables read.
pub fn read_associations(found: &[RouteTable], items: &[Map]) -> Vec<Option<Map>> {
    items
        .iter()
        .map(|item| {
            let table = opt_s(item, "route_table_id")?;
            let t = found.iter().find(|t| t.route_table_id() == Some(table))?;
            let assoc = t.associations().iter().find(|x| match opt_s(item, "id") {
                Some(id) => x.route_table_association_id() == Some(id),
                None => x.subnet_id() == opt_s(item, "subnet_id"),
            })?;
            let mut attrs = item.clone();
            attrs.insert(
                "id".into(),
                Value::from(assoc.route_table_association_id().unwrap_or_default()),
            );
            attrs.insert(
                "subnet_id".into(),
                assoc.subnet_id().map_or(Value::Null, Value::from),
            );
            Some(attrs)
        })
        .collect()
}

pub async fn apply_association(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create | Operation::Update => {
            let out = ec2
                .associate_route_table()
                .route_table_id(s(a, "route_table_id")?)
                .subnet_id(s(a, "subnet_id")?)
                .send()
                .await
                .map_err(|e| api_error("AssociateRouteTable", e))?;
            Ok(created(change, out.association_id().unwrap_or_default()))
        }
        Operation::Delete => gone_ok(
            "DisassociateRouteTable",
            ec2.disassociate_route_table()
                .association_id(id_of(a)?)
                .send()
                .await,
        ),
    }
}

pub fn distinct(items: &[Map], key: &str) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .filter_map(|i| opt_s(i, key).map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn port(attrs: &Map, key: &str) -> Result<i32, ProviderError> {
    int(attrs, key)
}

pub fn keep(from: &Map, to: &mut Map) {
    carry(from, to, &["region", "endpoint"]);
}
