//! The workspace's bucket: encrypted by default, closed to the public, and kept when
//! the workspace is destroyed unless the configuration says otherwise.

use crate::attrs::{opt_s, s};
use crate::errors::api_error;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging,
};
use aws_sdk_s3::Client;
use tik_engine::provider::{ChangeRequest, Operation, ProviderError};
use tik_engine::value::{Map, Value};

/// All buckets of the account in one call; a bucket is found by its name.
pub async fn read_buckets(s3: &Client, items: Vec<Map>) -> Result<Vec<Option<Map>>, ProviderError> {
    let out = s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| api_error("ListBuckets", e))?;
    let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
    Ok(items
        .iter()
        .map(|item| {
            let name = opt_s(item, "name")?;
            names.contains(&name).then(|| {
                let mut attrs = item.clone();
                attrs.insert("id".into(), Value::from(name));
                attrs
            })
        })
        .collect())
}

fn tagging(change: &ChangeRequest) -> Result<Tagging, ProviderError> {
    let tags = crate::attrs::tag_pairs(change)
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
            let by_default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
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
            s3.put_bucket_tagging()
                .bucket(name)
                .tagging(tagging(change)?)
                .send()
                .await
                .map_err(|e| api_error("PutBucketTagging", e))?;
            Ok(crate::network::merged(change))
        }
        Operation::Delete => {
            // The data is the user's: unless told otherwise, tik only forgets the bucket.
            if a.get("keep_on_destroy").and_then(Value::as_bool) != Some(false) {
                return Ok(Map::new());
            }
            match s3.delete_bucket().bucket(name).send().await {
                Ok(_) => Ok(Map::new()),
                Err(e) if crate::errors::code_of(&e) == Some("NoSuchBucket") => Ok(Map::new()),
                Err(e) => Err(api_error("DeleteBucket", e)),
            }
        }
    }
}
