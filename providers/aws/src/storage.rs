//! The workspace's bucket: encrypted by default, closed to the public, and kept when
//! the workspace is destroyed unless the configuration says otherwise.

use crate::attrs::{opt_s, s, ADDRESS_TAG, LINEAGE_TAG};
use crate::errors::{api_error, code_of, gone_ok};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging,
};
use aws_sdk_s3::Client;
use std::collections::HashSet;
use tik_engine::addr::Address;
use tik_engine::provider::{ChangeRequest, Operation, Orphan, ProviderError};
use tik_engine::value::{Map, Value};

/// The encryption tik asks for, and what a bucket without default encryption reads as.
pub const ENCRYPTION: &str = "AES256";

/// A bucket is found by its name: its tags and its default encryption are read, one
/// call each (S3 has no call that reads them for several buckets).
pub async fn read_buckets(s3: &Client, items: Vec<Map>) -> Result<Vec<Option<Map>>, ProviderError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(name) = opt_s(&item, "name").map(str::to_string) else {
            out.push(None);
            continue;
        };
        let Some(tags) = bucket_tags(s3, &name).await? else {
            out.push(None);
            continue;
        };
        let mut attrs = item;
        attrs.insert("id".into(), Value::from(name.as_str()));
        attrs.insert("tags".into(), user_tags(&tags));
        attrs.insert("encryption".into(), encryption(s3, &name).await?);
        out.push(Some(attrs));
    }
    Ok(out)
}

/// A bucket's tags; `None` when the bucket is gone.
async fn bucket_tags(s3: &Client, name: &str) -> Result<Option<Vec<Tag>>, ProviderError> {
    match s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(Some(out.tag_set)),
        Err(e) => match code_of(&e) {
            Some("NoSuchTagSet") => Ok(Some(Vec::new())),
            Some("NoSuchBucket") => Ok(None),
            _ => Err(api_error("GetBucketTagging", e)),
        },
    }
}

fn tag_of<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter().find(|t| t.key() == key).map(|t| t.value())
}

fn user_tags(tags: &[Tag]) -> Value {
    crate::attrs::user_tags(tags.iter().map(|t| (t.key(), t.value())))
}

/// The algorithm of a bucket's default encryption, or null where it has none.
async fn encryption(s3: &Client, name: &str) -> Result<Value, ProviderError> {
    match s3.get_bucket_encryption().bucket(name).send().await {
        Ok(out) => Ok(out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map_or(Value::Null, |d| Value::from(d.sse_algorithm().as_str()))),
        Err(e) if code_of(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            Ok(Value::Null)
        }
        Err(e) => Err(api_error("GetBucketEncryption", e)),
    }
}

/// Buckets of this lineage that the state does not record. Listing names costs one
/// call; only buckets named like tik's default names (`tik-...`) and not in state
/// have their tags read, so a refresh of a recorded workspace reads no more.
pub async fn orphans(
    s3: &Client,
    lineage: &str,
    known: &HashSet<String>,
    place: &Map,
) -> Result<Vec<Orphan>, ProviderError> {
    let out = s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| api_error("ListBuckets", e))?;
    let mut found = Vec::new();
    for name in out.buckets().iter().filter_map(|b| b.name()) {
        if known.contains(name) || !name.starts_with("tik-") {
            continue;
        }
        let Some(tags) = bucket_tags(s3, name).await? else {
            continue;
        };
        if tag_of(&tags, LINEAGE_TAG) != Some(lineage) {
            continue;
        }
        let Some(address) = tag_of(&tags, ADDRESS_TAG).and_then(|a| Address::parse(a).ok()) else {
            continue;
        };
        let mut attributes = place.clone();
        attributes.insert("name".into(), Value::from(name));
        attributes.insert("id".into(), Value::from(name));
        attributes.insert("tags".into(), user_tags(&tags));
        attributes.insert("encryption".into(), encryption(s3, name).await?);
        found.push(Orphan {
            address,
            type_name: "aws_s3_bucket".into(),
            attributes,
        });
    }
    Ok(found)
}

async fn put_encryption(s3: &Client, name: &str, algorithm: &str) -> Result<(), ProviderError> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(algorithm))
        .build()
        .map_err(|e| ProviderError::new(e.to_string()))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .build();
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| ProviderError::new(e.to_string()))?;
    s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(|e| api_error("PutBucketEncryption", e))?;
    Ok(())
}

async fn release(s3: &Client, name: &str, attrs: &Map) -> Result<(), ProviderError> {
    let user = crate::attrs::user_tag_pairs(attrs);
    if user.is_empty() {
        let r = s3.delete_bucket_tagging().bucket(name).send().await;
        gone_ok("DeleteBucketTagging", r)?;
    } else {
        let r = s3
            .put_bucket_tagging()
            .bucket(name)
            .tagging(tag_set(user)?)
            .send()
            .await;
        gone_ok("PutBucketTagging", r)?;
    }
    Ok(())
}

fn tagging(change: &ChangeRequest) -> Result<Tagging, ProviderError> {
    tag_set(crate::attrs::tag_pairs(change))
}

fn tag_set(pairs: Vec<(String, String)>) -> Result<Tagging, ProviderError> {
    let tags = pairs
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(&k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::new(format!("bad tag {k}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|e| ProviderError::new(format!("bad tags: {e}")))
}

pub async fn apply_bucket(s3: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let name = s(a, "name")?;
    match change.operation {
        Operation::Create => {
            let mut create = s3.create_bucket().bucket(name);
            let region = s(a, "region")?;
            if region != "us-east-1" {
                let location = CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build();
                create = create.create_bucket_configuration(location);
            }
            create
                .send()
                .await
                .map_err(|e| api_error("CreateBucket", e))?;
            put_encryption(s3, name, opt_s(a, "encryption").unwrap_or(ENCRYPTION)).await?;
            let closed = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build();
            s3.put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(closed)
                .send()
                .await
                .map_err(|e| api_error("PutPublicAccessBlock", e))?;
            s3.put_bucket_tagging()
                .bucket(name)
                .tagging(tagging(change)?)
                .send()
                .await
                .map_err(|e| api_error("PutBucketTagging", e))?;
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(name));
            Ok(attrs)
        }
        Operation::Update => {
            let prior = change.prior.clone().unwrap_or_default();
            if prior.get("tags") != a.get("tags") {
                s3.put_bucket_tagging()
                    .bucket(name)
                    .tagging(tagging(change)?)
                    .send()
                    .await
                    .map_err(|e| api_error("PutBucketTagging", e))?;
            }
            if prior.get("encryption") != a.get("encryption") {
                put_encryption(s3, name, opt_s(a, "encryption").unwrap_or(ENCRYPTION)).await?;
            }
            Ok(crate::network::merged(change))
        }
        Operation::Delete => {
            // The data is the user's: unless told otherwise, tik only forgets the bucket.
            // A kept bucket loses tik's identity tags, so that no later refresh of
            // this state takes it for an orphan (and nobody destroys it as one).
            if kept_on_delete(a) {
                release(s3, name, a).await?;
                return Ok(Map::new());
            }
            gone_ok("DeleteBucket", s3.delete_bucket().bucket(name).send().await)
        }
    }
}

/// Whether deleting the bucket only forgets it: unless `keep_on_destroy = false`,
/// the data is the user's.
pub fn kept_on_delete(attributes: &Map) -> bool {
    attributes.get("keep_on_destroy").and_then(Value::as_bool) != Some(false)
}
