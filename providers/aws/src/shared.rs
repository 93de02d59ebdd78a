//! `network { mode = "shared"  vpc_id = "vpc-..." }`: an existing VPC that tik looks up
//! and uses but never creates, changes or destroys, nor any of its subnets.

use crate::attrs::{filter, s};
use crate::errors::api_error;
use aws_sdk_ec2::Client;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

/// The VPC's range and its subnets, public (they give instances public IPs) and private.
async fn look_up(ec2: &Client, vpc_id: &str) -> Result<Option<Map>, ProviderError> {
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("vpc-id", vec![vpc_id.to_string()]))
        .send()
        .await
        .map_err(|e| api_error("DescribeVpcs", e))?;
    let Some(vpc) = vpcs.vpcs().first() else {
        return Ok(None);
    };
    let mut subnets = Vec::new();
    let mut pages = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vec![vpc_id.to_string()]))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        subnets.extend(
            page.map_err(|e| api_error("DescribeSubnets", e))?
                .subnets()
                .iter()
                .cloned(),
        );
    }
    // A stable order, so the same subnets give the same plan.
    subnets.sort_by(|a, b| a.subnet_id().cmp(&b.subnet_id()));
    let ids = |public: bool| -> Value {
        Value::List(
            subnets
                .iter()
                .filter(|n| n.map_public_ip_on_launch().unwrap_or(false) == public)
                .filter_map(|n| n.subnet_id().map(Value::from))
                .collect(),
        )
    };
    let mut attrs = Map::new();
    attrs.insert("id".into(), Value::from(vpc_id));
    attrs.insert(
        "cidr".into(),
        Value::from(vpc.cidr_block().unwrap_or_default()),
    );
    attrs.insert("public_subnet_ids".into(), ids(true));
    attrs.insert("private_subnet_ids".into(), ids(false));
    Ok(Some(attrs))
}

pub async fn read_existing(
    ec2: &Client,
    items: Vec<Map>,
) -> Result<Vec<Option<Map>>, ProviderError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(
            look_up(ec2, s(&item, "vpc_id")?)
                .await?
                .map(|found| crate::overlay(&item, &found)),
        );
    }
    Ok(out)
}

pub async fn apply_existing(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        // Using a shared VPC is looking it up: nothing is created.
        Operation::Create | Operation::Update => {
            let vpc_id = s(a, "vpc_id")?;
            let found = look_up(ec2, vpc_id).await?.ok_or_else(|| ProviderError {
                code: Some("InvalidVpcID.NotFound".into()),
                message: format!("the shared VPC {vpc_id} does not exist in this region"),
            })?;
            Ok(crate::overlay(a, &found))
        }
        // Nor is anything destroyed: tik only stops using it.
        Operation::Delete => Ok(Map::new()),
    }
}
