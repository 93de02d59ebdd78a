//! The workspace's security group, and its ingress rules one resource each, so that a
//! changed rule is revoked or authorized alone, never all rules at once.

use crate::attrs::{filter, opt_s, read_tags, retag, s, tag_spec};
use crate::errors::{api_error, code_of, gone_ok};
use crate::network::distinct;
use crate::Found;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, UserIdGroupPair};
use aws_sdk_ec2::Client;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

pub async fn read_groups(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Found>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_security_groups()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for g in page
            .map_err(|e| api_error("DescribeSecurityGroups", e))?
            .security_groups()
        {
            let mut attrs = Map::new();
            attrs.insert("id".into(), Value::from(g.group_id().unwrap_or_default()));
            attrs.insert("vpc_id".into(), Value::from(g.vpc_id().unwrap_or_default()));
            attrs.insert(
                "description".into(),
                Value::from(g.description().unwrap_or_default()),
            );
            read_tags(g.tags(), &mut attrs);
            attrs.insert(
                "name".into(),
                Value::from(g.group_name().unwrap_or_default()),
            );
            out.push(Found::new(attrs, g.tags()));
        }
    }
    Ok(out)
}

pub async fn apply_group(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    match change.operation {
        Operation::Create => {
            let out = ec2
                .create_security_group()
                .group_name(s(a, "name")?)
                .description(s(a, "description")?)
                .vpc_id(s(a, "vpc_id")?)
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, change))
                .send()
                .await
                .map_err(|e| api_error("CreateSecurityGroup", e))?;
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(out.group_id().unwrap_or_default()));
            Ok(attrs)
        }
        Operation::Update => retag(ec2, change).await,
        Operation::Delete => gone_ok(
            "DeleteSecurityGroup",
            ec2.delete_security_group()
                .group_id(s(a, "id")?)
                .send()
                .await,
        ),
    }
}

/// What a rule is, for finding it again: protocol, ports, and its source.
fn same_rule(item: &Map, r: &aws_sdk_ec2::types::SecurityGroupRule) -> bool {
    let num = |k: &str| item.get(k).and_then(Value::as_f64).map(|n| n as i32);
    let self_source = item.get("source_self").and_then(Value::as_bool) == Some(true);
    opt_s(item, "protocol") == r.ip_protocol()
        && num("from_port") == r.from_port()
        && num("to_port") == r.to_port()
        && if self_source {
            r.referenced_group_info().and_then(|g| g.group_id()) == r.group_id()
        } else {
            opt_s(item, "cidr") == r.cidr_ipv4()
        }
}

pub async fn read_rules(ec2: &Client, items: &[Map]) -> Result<Vec<Option<Map>>, ProviderError> {
    let groups = distinct(items, "security_group_id");
    let mut rules = Vec::new();
    if !groups.is_empty() {
        let mut pages = ec2
            .describe_security_group_rules()
            .filters(filter("group-id", groups))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            rules.extend(
                page.map_err(|e| api_error("DescribeSecurityGroupRules", e))?
                    .security_group_rules()
                    .iter()
                    .cloned(),
            );
        }
    }
    Ok(items
        .iter()
        .map(|item| {
            let group = opt_s(item, "security_group_id")?;
            let rule = rules
                .iter()
                .filter(|r| r.is_egress() != Some(true) && r.group_id() == Some(group))
                .find(|r| match opt_s(item, "id") {
                    Some(id) => r.security_group_rule_id() == Some(id),
                    None => same_rule(item, r),
                })?;
            let mut attrs = item.clone();
            attrs.insert(
                "id".into(),
                Value::from(rule.security_group_rule_id().unwrap_or_default()),
            );
            attrs.insert(
                "protocol".into(),
                Value::from(rule.ip_protocol().unwrap_or_default()),
            );
            attrs.insert(
                "from_port".into(),
                Value::Number(f64::from(rule.from_port().unwrap_or(-1))),
            );
            attrs.insert(
                "to_port".into(),
                Value::Number(f64::from(rule.to_port().unwrap_or(-1))),
            );
            if item.get("source_self").and_then(Value::as_bool) != Some(true) {
                attrs.insert(
                    "cidr".into(),
                    rule.cidr_ipv4().map_or(Value::Null, Value::from),
                );
            }
            Some(attrs)
        })
        .collect())
}

pub async fn apply_rule(ec2: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let group = s(a, "security_group_id")?;
    match change.operation {
        Operation::Create | Operation::Update => {
            let mut perm = IpPermission::builder()
                .ip_protocol(s(a, "protocol")?)
                .from_port(crate::network::port(a, "from_port")?)
                .to_port(crate::network::port(a, "to_port")?);
            if a.get("source_self").and_then(Value::as_bool) == Some(true) {
                perm = perm.user_id_group_pairs(UserIdGroupPair::builder().group_id(group).build());
            } else {
                let mut range = IpRange::builder().cidr_ip(s(a, "cidr")?);
                if let Some(d) = opt_s(a, "description") {
                    range = range.description(d);
                }
                perm = perm.ip_ranges(range.build());
            }
            let out = ec2
                .authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(perm.build())
                .send()
                .await
                .map_err(|e| api_error("AuthorizeSecurityGroupIngress", e))?;
            let id = out
                .security_group_rules()
                .first()
                .and_then(|r| r.security_group_rule_id())
                .unwrap_or_default();
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(id));
            Ok(attrs)
        }
        Operation::Delete => match ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .security_group_rule_ids(s(a, "id")?)
            .send()
            .await
        {
            Ok(_) => Ok(Map::new()),
            Err(e)
                if code_of(&e)
                    .is_some_and(|c| c.ends_with(".NotFound") || c.contains("NotFound")) =>
            {
                Ok(Map::new())
            }
            Err(e) => Err(api_error("RevokeSecurityGroupIngress", e)),
        },
    }
}
