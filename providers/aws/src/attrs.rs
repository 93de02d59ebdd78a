//! Reading attributes and building tags: what every AWS resource shares.

use crate::clients::Target;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use tik_engine::provider::{ChangeRequest, ProviderError};
use tik_engine::value::{Map, Value};

/// Tags that tik sets and reads back only to find its objects: not part of `tags`.
pub const ADDRESS_TAG: &str = "tik:address";
pub const LINEAGE_TAG: &str = "tik:lineage";

pub fn s<'m>(attrs: &'m Map, key: &str) -> Result<&'m str, ProviderError> {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::new(format!("the attribute {key} must be set (a string)")))
}

pub fn opt_s<'m>(attrs: &'m Map, key: &str) -> Option<&'m str> {
    attrs.get(key).and_then(Value::as_str)
}

pub fn int(attrs: &Map, key: &str) -> Result<i32, ProviderError> {
    attrs
        .get(key)
        .and_then(Value::as_f64)
        .filter(|n| n.fract() == 0.0 && n.abs() < 1e9)
        .map(|n| n as i32)
        .ok_or_else(|| ProviderError::new(format!("the attribute {key} must be a whole number")))
}

pub fn target(attrs: &Map) -> Result<Target, ProviderError> {
    Ok(Target {
        region: s(attrs, "region")?.to_string(),
        endpoint: opt_s(attrs, "endpoint").map(str::to_string),
    })
}

pub fn filter(name: &str, values: Vec<String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values))
        .build()
}

/// The user's `tags` of a set of attributes, as key and value.
pub fn user_tag_pairs(attrs: &Map) -> Vec<(String, String)> {
    attrs
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.to_template_string()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// What every object tik creates is tagged with, in any service: its own tags, and
/// tik's identity tags, by which a refresh finds it again.
pub fn tag_pairs(change: &ChangeRequest) -> Vec<(String, String)> {
    let mut pairs = user_tag_pairs(&change.planned);
    pairs.push((ADDRESS_TAG.to_string(), change.address.to_string()));
    pairs.push((LINEAGE_TAG.to_string(), change.lineage.clone()));
    pairs
}

/// EC2 tags of a new object: `tag_pairs`, and its name where EC2 shows names.
pub fn tags_for(change: &ChangeRequest) -> Vec<Tag> {
    let mut pairs = tag_pairs(change);
    if let Some(name) = opt_s(&change.planned, "name") {
        pairs.push(("Name".to_string(), name.to_string()));
    }
    pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub fn tag_spec(kind: ResourceType, change: &ChangeRequest) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags_for(change)))
        .build()
}

/// Splits tags read from AWS into the resource's `name` and its `tags` attribute.
pub fn read_tags(tags: &[Tag], attrs: &mut Map) {
    let mut user = Map::new();
    for t in tags {
        match (t.key(), t.value()) {
            (Some("Name"), Some(v)) => {
                attrs.insert("name".into(), Value::String(v.to_string()));
            }
            (Some(ADDRESS_TAG | LINEAGE_TAG), _) => {}
            (Some(k), Some(v)) => {
                user.insert(k.to_string(), Value::String(v.to_string()));
            }
            _ => {}
        }
    }
    user.sort_keys();
    attrs.insert("tags".into(), Value::Object(user));
}

/// A resource's `tags` attribute from the tags a service read back (IAM, S3): all but
/// tik's identity tags, in key order.
pub fn user_tags<'t>(pairs: impl IntoIterator<Item = (&'t str, &'t str)>) -> Value {
    let mut m: Map = pairs
        .into_iter()
        .filter(|(k, _)| !matches!(*k, ADDRESS_TAG | LINEAGE_TAG))
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    m.sort_keys();
    Value::Object(m)
}

pub fn tag_value<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The attributes every resource keeps from its configuration as they were:
/// where its API is.
pub fn carry(from: &Map, to: &mut Map, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            to.insert(k.to_string(), v.clone());
        }
    }
}

/// Makes the user tags of `change` the resource's tags: creates and deletes only the difference.
pub async fn update_tags(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    change: &ChangeRequest,
) -> Result<(), ProviderError> {
    let empty = Map::new();
    let old = change
        .prior
        .as_ref()
        .and_then(|p| p.get("tags"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new = change
        .planned
        .get("tags")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let set: Vec<Tag> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .filter_map(|(k, v)| {
            v.to_template_string()
                .map(|v| Tag::builder().key(k).value(v).build())
        })
        .collect();
    let gone: Vec<Tag> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| Tag::builder().key(k).build())
        .collect();
    if !set.is_empty() {
        ec2.create_tags()
            .resources(id)
            .set_tags(Some(set))
            .send()
            .await
            .map_err(|e| crate::errors::api_error("CreateTags", e))?;
    }
    if !gone.is_empty() {
        ec2.delete_tags()
            .resources(id)
            .set_tags(Some(gone))
            .send()
            .await
            .map_err(|e| crate::errors::api_error("DeleteTags", e))?;
    }
    Ok(())
}

/// An in-place update of a taggable EC2 resource: only its tags can change in place.
/// Returns the prior attributes with the planned ones over them.
pub async fn retag(
    ec2: &aws_sdk_ec2::Client,
    change: &ChangeRequest,
) -> Result<Map, ProviderError> {
    let prior = change.prior.as_ref().unwrap_or(&change.planned);
    update_tags(ec2, s(prior, "id")?, change).await?;
    Ok(crate::network::merged(change))
}
