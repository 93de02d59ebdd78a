//! The NAT gateway, with the elastic IP it owns, and the S3 gateway endpoint.

use crate::attrs::{opt_s, read_tags, retag, s, tag_spec};
use crate::errors::{api_error, code_of};
use crate::Found;
use aws_sdk_ec2::client::Waiters as _;
use aws_sdk_ec2::types::{
    DomainType, Filter, NatGatewayState, ResourceType, State, VpcEndpointType,
};
use aws_sdk_ec2::Client;
use std::time::Duration;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

/// NAT gateways take minutes to come up and to go away.
const NAT_WAIT: Duration = Duration::from_secs(900);

pub async fn read_nat_gateways(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_nat_gateways()
        .set_filter(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for n in page
            .map_err(|e| api_error("DescribeNatGateways", e))?
            .nat_gateways()
        {
            let mut attrs = Map::new();
            if matches!(
                n.state(),
                Some(
                    NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed
                )
            ) {
                attrs.insert(GONE.into(), Value::Bool(true));
            }
            attrs.insert(
                "id".into(),
                Value::from(n.nat_gateway_id().unwrap_or_default()),
            );
            attrs.insert(
                "subnet_id".into(),
                Value::from(n.subnet_id().unwrap_or_default()),
            );
            let address = n.nat_gateway_addresses().first();
            attrs.insert(
                "allocation_id".into(),
                address
                    .and_then(|a| a.allocation_id())
                    .map_or(Value::Null, Value::from),
            );
            attrs.insert(
                "public_ip".into(),
                address
                    .and_then(|a| a.public_ip())
                    .map_or(Value::Null, Value::from),
            );
            read_tags(n.tags(), &mut attrs);
            out.push(Found::new(attrs, n.tags()));
        }
    }
    Ok(out)
}

/// Set by `read_nat_gateways` on a NAT gateway that is deleted, being deleted or
/// failed: gone, but perhaps not the elastic IP it held. Never recorded.
pub const GONE: &str = "tik:gone";

/// The lineage's elastic IPs that nothing holds: left by a NAT gateway's create cut
/// short after AllocateAddress, or by its delete cut short before ReleaseAddress.
pub async fn loose_addresses(
    ec2: &Client,
    lineage: &str,
) -> Result<Vec<aws_sdk_ec2::types::Address>, ProviderError> {
    let out = ec2
        .describe_addresses()
        .filters(crate::attrs::filter(
            &format!("tag:{}", crate::attrs::LINEAGE_TAG),
            vec![lineage.to_string()],
        ))
        .send()
        .await
        .map_err(|e| api_error("DescribeAddresses", e))?;
    Ok(out
        .addresses()
        .iter()
        // moto answers "" where AWS leaves a field out.
        .filter(|a| {
            [
                a.association_id(),
                a.network_interface_id(),
                a.instance_id(),
            ]
            .iter()
            .all(|held| held.is_none_or(str::is_empty))
        })
        .cloned()
        .collect())
}

pub async fn read_addresses(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let out = ec2
        .describe_addresses()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| api_error("DescribeAddresses", e))?;
    Ok(out.addresses().iter().map(address_found).collect())
}

fn address_found(e: &aws_sdk_ec2::types::Address) -> Found {
    let mut attrs = Map::new();
    attrs.insert(
        "id".into(),
        Value::from(e.allocation_id().unwrap_or_default()),
    );
    attrs.insert(
        "public_ip".into(),
        e.public_ip().map_or(Value::Null, Value::from),
    );
    read_tags(e.tags(), &mut attrs);
    Found::new(attrs, e.tags())
}

/// The lineage's loose elastic IPs (`loose_addresses`) whose ids no record names.
pub async fn orphan_addresses(
    ec2: &Client,
    lineage: &str,
    known: &std::collections::HashSet<String>,
) -> Result<Vec<Found>, ProviderError> {
    Ok(loose_addresses(ec2, lineage)
        .await?
        .iter()
        .filter(|e| !e.allocation_id().is_some_and(|id| known.contains(id)))
        .map(address_found)
        .collect())
}

/// An orphaned elastic IP is only ever released.
pub async fn apply_address(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    if change.operation != Operation::Delete {
        return Err(ProviderError::new(
            "an aws_elastic_ip is only found as an orphan and released; a NAT gateway allocates its own",
        ));
    }
    match ec2
        .release_address()
        .allocation_id(s(&change.planned, "id")?)
        .send()
        .await
    {
        Ok(_) => Ok(Map::new()),
        Err(e) if code_of(&e).is_some_and(|c| c.contains("NotFound")) => Ok(Map::new()),
        Err(e) => Err(api_error("ReleaseAddress", e)),
    }
}

pub async fn apply_nat_gateway(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            // An address an earlier create of this very gateway allocated and could not
            // hand over (it was killed) is taken again rather than left to cost money.
            let address = change.address.to_string();
            let left = loose_addresses(ec2, &change.lineage)
                .await?
                .into_iter()
                .find(|e| {
                    crate::attrs::tag_value(e.tags(), crate::attrs::ADDRESS_TAG)
                        == Some(address.as_str())
                });
            let (allocation, public_ip) = match left {
                Some(e) => (
                    e.allocation_id().unwrap_or_default().to_string(),
                    e.public_ip().map(str::to_string),
                ),
                None => {
                    let eip = ec2
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(tag_spec(ResourceType::ElasticIp, change))
                        .send()
                        .await
                        .map_err(|e| api_error("AllocateAddress", e))?;
                    (
                        eip.allocation_id().unwrap_or_default().to_string(),
                        eip.public_ip().map(str::to_string),
                    )
                }
            };
            let created = ec2
                .create_nat_gateway()
                .subnet_id(s(a, "subnet_id")?)
                .allocation_id(&allocation)
                .tag_specifications(tag_spec(ResourceType::Natgateway, change))
                .send()
                .await;
            let nat = match created {
                Ok(out) => out
                    .nat_gateway()
                    .and_then(|n| n.nat_gateway_id())
                    .unwrap_or_default()
                    .to_string(),
                Err(e) => {
                    // Nothing holds the address yet: give it back rather than leak it.
                    let _ = ec2
                        .release_address()
                        .allocation_id(&allocation)
                        .send()
                        .await;
                    return Err(api_error("CreateNatGateway", e));
                }
            };
            ec2.wait_until_nat_gateway_available()
                .nat_gateway_ids(&nat)
                .wait(NAT_WAIT)
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "{nat} did not become available within {} s: {e}",
                        NAT_WAIT.as_secs()
                    ))
                })?;
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(nat));
            attrs.insert("allocation_id".into(), Value::from(allocation));
            attrs.insert(
                "public_ip".into(),
                public_ip.map_or(Value::Null, Value::from),
            );
            Ok(attrs)
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => {
            let id = s(a, "id")?;
            match ec2.delete_nat_gateway().nat_gateway_id(id).send().await {
                Ok(_) => {
                    ec2.wait_until_nat_gateway_deleted()
                        .nat_gateway_ids(id)
                        .wait(NAT_WAIT)
                        .await
                        .map_err(|e| {
                            ProviderError::new(format!(
                                "{id} was not deleted within {} s: {e}",
                                NAT_WAIT.as_secs()
                            ))
                        })?;
                }
                Err(e) if code_of(&e).is_some_and(|c| c.contains("NotFound")) => {}
                Err(e) => return Err(api_error("DeleteNatGateway", e)),
            }
            if let Some(allocation) = opt_s(a, "allocation_id") {
                match ec2.release_address().allocation_id(allocation).send().await {
                    Ok(_) => {}
                    Err(e) if code_of(&e).is_some_and(|c| c.contains("NotFound")) => {}
                    Err(e) => return Err(api_error("ReleaseAddress", e)),
                }
            }
            Ok(Map::new())
        }
    }
}

pub async fn read_endpoints(
    ec2: &Client,
    filters: Vec<Filter>,
) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_vpc_endpoints()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for e in page
            .map_err(|e| api_error("DescribeVpcEndpoints", e))?
            .vpc_endpoints()
        {
            if e.state().is_some_and(endpoint_gone) {
                continue;
            }
            let mut attrs = Map::new();
            attrs.insert(
                "id".into(),
                Value::from(e.vpc_endpoint_id().unwrap_or_default()),
            );
            attrs.insert("vpc_id".into(), Value::from(e.vpc_id().unwrap_or_default()));
            attrs.insert(
                "service".into(),
                Value::from(e.service_name().unwrap_or_default()),
            );
            attrs.insert(
                "route_table_id".into(),
                e.route_table_ids()
                    .first()
                    .map_or(Value::Null, |r| Value::from(r.as_str())),
            );
            read_tags(e.tags(), &mut attrs);
            out.push(Found::new(attrs, e.tags()));
        }
    }
    Ok(out)
}

/// Whether an endpoint in this state is gone or going. The service answers states in
/// lower case (`deleted`) while the SDK's enum spells them capitalised (`Deleted`), so
/// they read as unknown values: compare the text.
fn endpoint_gone(state: &State) -> bool {
    matches!(
        state.as_str().to_ascii_lowercase().as_str(),
        "deleted" | "deleting" | "failed" | "rejected" | "expired"
    )
}

pub async fn apply_endpoint(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_vpc_endpoint()
                .vpc_id(s(a, "vpc_id")?)
                .service_name(s(a, "service")?)
                .vpc_endpoint_type(VpcEndpointType::Gateway)
                .route_table_ids(s(a, "route_table_id")?)
                .tag_specifications(tag_spec(ResourceType::VpcEndpoint, change))
                .send()
                .await
                .map_err(|e| api_error("CreateVpcEndpoint", e))?;
            let mut attrs = a.clone();
            attrs.insert(
                "id".into(),
                Value::from(
                    out.vpc_endpoint()
                        .and_then(|e| e.vpc_endpoint_id())
                        .unwrap_or_default(),
                ),
            );
            Ok(attrs)
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => {
            let out = ec2
                .delete_vpc_endpoints()
                .vpc_endpoint_ids(s(a, "id")?)
                .send()
                .await
                .map_err(|e| api_error("DeleteVpcEndpoints", e))?;
            match out.unsuccessful().first() {
                Some(u)
                    if !u
                        .error()
                        .and_then(|e| e.code())
                        .is_some_and(|c| c.contains("NotFound")) =>
                {
                    Err(ProviderError {
                        code: u.error().and_then(|e| e.code()).map(str::to_string),
                        message: format!(
                            "DeleteVpcEndpoints: {}",
                            u.error().and_then(|e| e.message()).unwrap_or("failed")
                        ),
                    })
                }
                _ => Ok(Map::new()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_gone_in_any_spelling_of_its_state() {
        for gone in [
            "deleted", "Deleted", "deleting", "failed", "Failed", "rejected", "expired",
        ] {
            assert!(endpoint_gone(&State::from(gone)), "{gone}");
        }
        for here in ["available", "Available", "pending", "pendingAcceptance"] {
            assert!(!endpoint_gone(&State::from(here)), "{here}");
        }
    }
}
