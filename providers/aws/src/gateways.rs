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
            if matches!(
                n.state(),
                Some(
                    NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed
                )
            ) {
                continue;
            }
            let mut attrs = Map::new();
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

pub async fn apply_nat_gateway(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let eip = ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tag_spec(ResourceType::ElasticIp, change))
                .send()
                .await
                .map_err(|e| api_error("AllocateAddress", e))?;
            let allocation = eip.allocation_id().unwrap_or_default().to_string();
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
                eip.public_ip().map_or(Value::Null, Value::from),
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
            if matches!(
                e.state(),
                Some(State::Deleted | State::Deleting | State::Failed)
            ) {
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
