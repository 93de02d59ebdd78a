//! `network { mode = "peering" }`: a peering connection to a working VPC, accepted, with
//! routes on both sides. Ours are route resources; the peer's are owned by the connection.

use crate::attrs::{filter, opt_s, read_tags, retag, s, tag_spec};
use crate::errors::{api_error, code_of, gone_ok};
use crate::Found;
use aws_sdk_ec2::types::{Filter, ResourceType, VpcPeeringConnectionStateReasonCode as Code};
use aws_sdk_ec2::Client;
use std::net::Ipv4Addr;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

fn parse(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip.parse::<Ipv4Addr>().ok()?) & mask, mask))
}

/// Two IPv4 ranges overlap when either holds the other's network address.
pub fn overlap(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some((na, ma)), Some((nb, mb))) => nb & ma == na || na & mb == nb,
        _ => false,
    }
}

pub async fn read_peerings(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_vpc_peering_connections()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page
            .map_err(|e| api_error("DescribeVpcPeeringConnections", e))?
            .vpc_peering_connections()
        {
            let code = p.status().and_then(|s| s.code());
            if matches!(
                code,
                Some(
                    Code::Deleted | Code::Deleting | Code::Rejected | Code::Failed | Code::Expired
                )
            ) {
                continue;
            }
            let mut attrs = Map::new();
            attrs.insert(
                "id".into(),
                Value::from(p.vpc_peering_connection_id().unwrap_or_default()),
            );
            attrs.insert(
                "vpc_id".into(),
                p.requester_vpc_info()
                    .and_then(|v| v.vpc_id())
                    .map_or(Value::Null, Value::from),
            );
            attrs.insert(
                "peer_vpc_id".into(),
                p.accepter_vpc_info()
                    .and_then(|v| v.vpc_id())
                    .map_or(Value::Null, Value::from),
            );
            read_tags(p.tags(), &mut attrs);
            out.push(Found::new(attrs, p.tags()));
        }
    }
    Ok(out)
}

pub async fn apply_peering(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let peer = s(a, "peer_vpc_id")?;
            let own_cidr = s(a, "cidr")?;
            let vpcs = ec2
                .describe_vpcs()
                .filters(filter("vpc-id", vec![peer.to_string()]))
                .send()
                .await
                .map_err(|e| api_error("DescribeVpcs", e))?;
            let peer_cidr = vpcs
                .vpcs()
                .first()
                .and_then(|v| v.cidr_block())
                .map(str::to_string)
                .ok_or_else(|| ProviderError {
                    code: Some("InvalidVpcID.NotFound".into()),
                    message: format!("the peer VPC {peer} does not exist in this region"),
                })?;
            if overlap(own_cidr, &peer_cidr) {
                return Err(ProviderError {
                    code: Some("CidrOverlap".into()),
                    message: format!("network cidr {own_cidr} overlaps the peer VPC's {peer_cidr}: peering needs ranges that do not overlap"),
                });
            }
            let out = ec2
                .create_vpc_peering_connection()
                .vpc_id(s(a, "vpc_id")?)
                .peer_vpc_id(peer)
                .tag_specifications(tag_spec(ResourceType::VpcPeeringConnection, change))
                .send()
                .await
                .map_err(|e| api_error("CreateVpcPeeringConnection", e))?;
            let id = out
                .vpc_peering_connection()
                .and_then(|p| p.vpc_peering_connection_id())
                .unwrap_or_default()
                .to_string();
            ec2.accept_vpc_peering_connection()
                .vpc_peering_connection_id(&id)
                .send()
                .await
                .map_err(|e| api_error("AcceptVpcPeeringConnection", e))?;
            // The peer's side: each of its route tables learns the way back to us.
            let tables = crate::network::describe_route_tables(
                ec2,
                vec![filter("vpc-id", vec![peer.to_string()])],
            )
            .await?;
            let mut routed = Vec::new();
            for t in &tables {
                let Some(table) = t.route_table_id() else {
                    continue;
                };
                ec2.create_route()
                    .route_table_id(table)
                    .destination_cidr_block(own_cidr)
                    .vpc_peering_connection_id(&id)
                    .send()
                    .await
                    .map_err(|e| api_error("CreateRoute", e))?;
                routed.push(Value::from(table));
            }
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(id));
            attrs.insert("peer_cidr".into(), Value::from(peer_cidr));
            attrs.insert("peer_route_table_ids".into(), Value::List(routed));
            Ok(attrs)
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => {
            if let (Some(Value::List(tables)), Some(own)) =
                (a.get("peer_route_table_ids"), opt_s(a, "cidr"))
            {
                for table in tables.iter().filter_map(Value::as_str) {
                    match ec2
                        .delete_route()
                        .route_table_id(table)
                        .destination_cidr_block(own)
                        .send()
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if code_of(&e).is_some_and(|c| c.contains("NotFound")) => {}
                        Err(e) => return Err(api_error("DeleteRoute", e)),
                    }
                }
            }
            gone_ok(
                "DeleteVpcPeeringConnection",
                ec2.delete_vpc_peering_connection()
                    .vpc_peering_connection_id(s(a, "id")?)
                    .send()
                    .await,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::overlap;

    #[test]
    fn ranges_overlap_when_one_holds_the_other() {
        assert!(overlap("10.0.0.0/16", "10.0.5.0/24"));
        assert!(overlap("10.0.5.0/24", "10.0.0.0/16"));
        assert!(overlap("10.0.0.0/16", "10.0.0.0/16"));
        assert!(!overlap("10.0.0.0/16", "10.1.0.0/16"));
        assert!(!overlap("10.0.0.0/16", "bad"));
    }
}
