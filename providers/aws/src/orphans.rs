//! Finding EC2 objects that carry a state's lineage tag but that the state does not record.

use crate::attrs::{filter, LINEAGE_TAG};
use crate::errors::api_error;
use crate::Found;
use aws_sdk_ec2::types::ResourceType;
use aws_sdk_ec2::Client;
use std::collections::HashSet;
use tik_engine::addr::Address;
use tik_engine::provider::{Orphan, ProviderError};
use tik_engine::value::{Map, Value};

/// The tik type of an EC2 resource type, for the types tik manages on their own.
/// Volumes belong to an instance and go with it; elastic IPs are found apart.
fn tik_type(kind: &ResourceType) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        ResourceType::Vpc => ("aws_vpc", "vpc-id"),
        ResourceType::Subnet => ("aws_subnet", "subnet-id"),
        ResourceType::InternetGateway => ("aws_internet_gateway", "internet-gateway-id"),
        ResourceType::RouteTable => ("aws_route_table", "route-table-id"),
        ResourceType::SecurityGroup => ("aws_security_group", "group-id"),
        ResourceType::Natgateway => ("aws_nat_gateway", "nat-gateway-id"),
        ResourceType::KeyPair => ("aws_key_pair", "key-pair-id"),
        ResourceType::Instance => ("aws_instance", "instance-id"),
        _ => return None,
    })
}

/// One DescribeTags call finds everything of the lineage; only when some of it is
/// unknown are its addresses and attributes read (once per type).
pub async fn discover(
    ec2: &Client,
    lineage: &str,
    known_ids: &HashSet<String>,
    place: &Map,
) -> Result<Vec<Orphan>, ProviderError> {
    let mut unknown: Vec<(String, ResourceType)> = Vec::new();
    let mut pages = ec2
        .describe_tags()
        .filters(filter("key", vec![LINEAGE_TAG.to_string()]))
        .filters(filter("value", vec![lineage.to_string()]))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for t in page.map_err(|e| api_error("DescribeTags", e))?.tags() {
            if let (Some(id), Some(kind)) = (t.resource_id(), t.resource_type()) {
                if !known_ids.contains(id) && tik_type(kind).is_some() {
                    unknown.push((id.to_string(), kind.clone()));
                }
            }
        }
    }
    let mut orphans = Vec::new();
    // Elastic IPs belong to a NAT gateway: only a loose one, which no gateway holds and
    // no record names, is an orphan, at its gateway's address with `.elastic_ip` added.
    // They are read on their own (one call), since moto's DescribeTags leaves them out.
    {
        for f in crate::gateways::orphan_addresses(ec2, lineage, known_ids).await? {
            let Some(held_by) = f.address.as_deref().and_then(|a| Address::parse(a).ok()) else {
                continue;
            };
            let mut attributes = f.attrs;
            attributes.extend(place.iter().map(|(k, v)| (k.clone(), v.clone())));
            orphans.push(Orphan {
                address: held_by.name("elastic_ip"),
                type_name: "aws_elastic_ip".to_string(),
                attributes,
            });
        }
    }
    let kinds: HashSet<ResourceType> = unknown.iter().map(|(_, k)| k.clone()).collect();
    for kind in kinds {
        let Some((type_name, id_filter)) = tik_type(&kind) else {
            continue;
        };
        let ids: Vec<String> = unknown
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(id, _)| id.clone())
            .collect();
        let found: Vec<Found> = match type_name {
            "aws_vpc" => crate::network::read_vpcs(ec2, vec![filter(id_filter, ids)]).await?,
            "aws_subnet" => crate::network::read_subnets(ec2, vec![filter(id_filter, ids)]).await?,
            "aws_internet_gateway" => {
                crate::network::read_internet_gateways(ec2, vec![filter(id_filter, ids)]).await?
            }
            "aws_route_table" => {
                crate::network::read_route_tables(ec2, vec![filter(id_filter, ids)]).await?
            }
            "aws_security_group" => {
                crate::security::read_groups(ec2, vec![filter(id_filter, ids)]).await?
            }
            "aws_nat_gateway" => {
                crate::gateways::read_nat_gateways(ec2, vec![filter(id_filter, ids)]).await?
            }
            "aws_key_pair" => {
                crate::compute::read_key_pairs(ec2, vec![filter(id_filter, ids)]).await?
            }
            _ => crate::compute::read_instances(ec2, vec![filter(id_filter, ids)]).await?,
        };
        for f in found
            .into_iter()
            .filter(|f| !f.attrs.contains_key(crate::gateways::GONE))
        {
            // Without its address tag, tik cannot tell what the object was meant to be.
            let Some(address) = f.address.as_deref().and_then(|a| Address::parse(a).ok()) else {
                continue;
            };
            let mut attributes = f.attrs;
            for (k, v) in place {
                attributes.insert(k.clone(), v.clone());
            }
            orphans.push(Orphan {
                address,
                type_name: type_name.to_string(),
                attributes,
            });
        }
    }
    Ok(orphans)
}

/// Where a resource's API is, as attributes: region and endpoint.
pub fn place_of(attrs: &Map) -> Map {
    ["region", "endpoint"]
        .iter()
        .filter_map(|k| attrs.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect::<Map>()
}

pub fn id_of(attrs: &Map) -> Option<String> {
    attrs.get("id").and_then(Value::as_str).map(str::to_string)
}
