//! IAM roles (with tik's inline policy) and instance profiles for heads and workers.

use crate::attrs::{opt_s, s};
use crate::attrs::{ADDRESS_TAG, LINEAGE_TAG};
use crate::errors::{api_error, code_of, gone_ok};
use aws_sdk_iam::types::{EntityType, InstanceProfile, RoleDetail, Tag};
use aws_sdk_iam::Client;
use std::collections::HashSet;
use tik_engine::addr::Address;
use tik_engine::provider::{ChangeRequest, Operation, Orphan, ProviderError};
use tik_engine::value::{Map, Value};

/// Everything tik creates in IAM lives under this path, so one listing finds it all.
pub const PATH: &str = "/tik/";
const POLICY_NAME: &str = "tik";

/// A policy document in one canonical form, so that layout never shows up as a change.
/// IAM answers with URL-encoded JSON; configuration gives plain JSON.
pub fn canonical_policy(text: &str) -> String {
    let decoded = if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        percent_decode(text)
    };
    match serde_json::from_str::<serde_json::Value>(&decoded) {
        Ok(v) => v.to_string(),
        Err(_) => decoded,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn iam_tags(pairs: Vec<(String, String)>) -> Vec<Tag> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn read_iam_tags(tags: &[Tag]) -> Value {
    crate::attrs::user_tags(tags.iter().map(|t| (t.key(), t.value())))
}

/// Every tik role, with its inline policy, tags and instance profiles, in one paginated
/// call: roles and profiles are both read from it, and so is the orphan search.
pub async fn list_roles(iam: &Client) -> Result<Vec<RoleDetail>, ProviderError> {
    let mut roles = Vec::new();
    let mut pages = iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        roles.extend(
            page.map_err(|e| api_error("GetAccountAuthorizationDetails", e))?
                .role_detail_list()
                .iter()
                .filter(|r| r.path() == Some(PATH))
                .cloned(),
        );
    }
    Ok(roles)
}

fn role_attrs(r: &RoleDetail, mut attrs: Map) -> Map {
    attrs.insert(
        "name".into(),
        Value::from(r.role_name().unwrap_or_default()),
    );
    attrs.insert("id".into(), Value::from(r.role_id().unwrap_or_default()));
    attrs.insert("arn".into(), Value::from(r.arn().unwrap_or_default()));
    attrs.insert(
        "assume_policy".into(),
        Value::String(canonical_policy(
            r.assume_role_policy_document().unwrap_or("{}"),
        )),
    );
    let policy = r
        .role_policy_list()
        .iter()
        .find(|p| p.policy_name() == Some(POLICY_NAME))
        .and_then(|p| p.policy_document());
    attrs.insert(
        "policy".into(),
        policy.map_or(Value::Null, |p| Value::String(canonical_policy(p))),
    );
    attrs.insert("tags".into(), read_iam_tags(r.tags()));
    attrs
}

fn profile_attrs(p: &InstanceProfile, mut attrs: Map) -> Map {
    attrs.insert("name".into(), Value::from(p.instance_profile_name()));
    attrs.insert("id".into(), Value::from(p.instance_profile_id()));
    attrs.insert("arn".into(), Value::from(p.arn()));
    attrs.insert(
        "role_name".into(),
        p.roles()
            .first()
            .map_or(Value::Null, |r| Value::from(r.role_name())),
    );
    attrs
}

/// The instance profiles of tik's roles. A profile that has no role (its create or
/// delete was cut short) is not among them: see `list_profiles`.
fn profiles(roles: &[RoleDetail]) -> impl Iterator<Item = &InstanceProfile> {
    roles
        .iter()
        .flat_map(|r| r.instance_profile_list())
        .filter(|p| p.path() == PATH)
}

pub fn read_roles(roles: &[RoleDetail], items: Vec<Map>) -> Vec<Option<Map>> {
    items
        .into_iter()
        .map(|item| {
            let name = opt_s(&item, "name")?;
            let r = roles.iter().find(|r| r.role_name() == Some(name))?;
            Some(role_attrs(r, item))
        })
        .collect()
}

/// Profiles by name: those of tik's roles, else among `lone` (every profile under
/// tik's path, listed only when some are not found with a role).
pub fn read_profiles(
    roles: &[RoleDetail],
    lone: &[InstanceProfile],
    items: Vec<Map>,
) -> Vec<Option<Map>> {
    items
        .into_iter()
        .map(|item| {
            let name = opt_s(&item, "name")?;
            let p = profiles(roles)
                .chain(lone)
                .find(|p| p.instance_profile_name() == name)?;
            Some(profile_attrs(p, item))
        })
        .collect()
}

/// Every instance profile under tik's path, with a role or not: a create cut short
/// before AddRoleToInstanceProfile, or a delete cut short after
/// RemoveRoleFromInstanceProfile, leaves one that the roles' listing does not show.
pub async fn list_profiles(iam: &Client) -> Result<Vec<InstanceProfile>, ProviderError> {
    let mut all = Vec::new();
    let mut pages = iam
        .list_instance_profiles()
        .path_prefix(PATH)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        all.extend(
            page.map_err(|e| api_error("ListInstanceProfiles", e))?
                .instance_profiles()
                .iter()
                .cloned(),
        );
    }
    Ok(all)
}

fn tag_of<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter().find(|t| t.key() == key).map(|t| t.value())
}

/// Roles and profiles of this lineage that the state does not record, from the
/// listing the refresh already made.
pub fn orphans(
    roles: &[RoleDetail],
    lineage: &str,
    known_ids: &HashSet<String>,
    place: &Map,
) -> Vec<Orphan> {
    let ours = |tags: &[Tag], id: &str| -> Option<Address> {
        if known_ids.contains(id) || tag_of(tags, LINEAGE_TAG) != Some(lineage) {
            return None;
        }
        Address::parse(tag_of(tags, ADDRESS_TAG)?).ok()
    };
    let mut found = Vec::new();
    for r in roles {
        if let Some(address) = ours(r.tags(), r.role_id().unwrap_or_default()) {
            found.push(Orphan {
                address,
                type_name: "aws_iam_role".into(),
                attributes: role_attrs(r, place.clone()),
            });
        }
    }
    for p in profiles(roles) {
        if let Some(address) = ours(p.tags(), p.instance_profile_id()) {
            found.push(Orphan {
                address,
                type_name: "aws_iam_instance_profile".into(),
                attributes: profile_attrs(p, place.clone()),
            });
        }
    }
    found
}

pub async fn apply_role(iam: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let name = s(a, "name")?;
    match change.operation {
        Operation::Create => {
            let all = iam_tags(crate::attrs::tag_pairs(change));
            let out = iam
                .create_role()
                .role_name(name)
                .path(PATH)
                .assume_role_policy_document(s(a, "assume_policy")?)
                .set_tags(Some(all))
                .send()
                .await
                .map_err(|e| api_error("CreateRole", e))?;
            put_policy(iam, name, POLICY_NAME, s(a, "policy")?).await?;
            let mut attrs = a.clone();
            attrs.insert(
                "id".into(),
                Value::from(out.role().map(|r| r.role_id()).unwrap_or_default()),
            );
            attrs.insert(
                "arn".into(),
                Value::from(out.role().map(|r| r.arn()).unwrap_or_default()),
            );
            canonicalize(&mut attrs);
            Ok(attrs)
        }
        Operation::Update => {
            let prior = change.prior.clone().unwrap_or_default();
            if prior.get("policy") != a.get("policy") {
                put_policy(iam, name, POLICY_NAME, s(a, "policy")?).await?;
            }
            if prior.get("tags") != a.get("tags") {
                let keep = iam_tags(crate::attrs::user_tag_pairs(a));
                let gone: Vec<String> = prior
                    .get("tags")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.keys()
                            .filter(|k| !keep.iter().any(|t| t.key() == k.as_str()))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if !gone.is_empty() {
                    iam.untag_role()
                        .role_name(name)
                        .set_tag_keys(Some(gone))
                        .send()
                        .await
                        .map_err(|e| api_error("UntagRole", e))?;
                }
                if !keep.is_empty() {
                    iam.tag_role()
                        .role_name(name)
                        .set_tags(Some(keep))
                        .send()
                        .await
                        .map_err(|e| api_error("TagRole", e))?;
                }
            }
            let mut attrs = prior;
            for (k, v) in a {
                attrs.insert(k.clone(), v.clone());
            }
            canonicalize(&mut attrs);
            Ok(attrs)
        }
        Operation::Delete => {
            delete_policy(iam, name, POLICY_NAME).await?;
            gone_ok("DeleteRole", iam.delete_role().role_name(name).send().await)
        }
    }
}

/// Inline policies tik put on its roles beside their own (`aws_iam_role_policy`: a
/// controller's on its workspace's head role), by role and policy name, from the
/// roles' listing.
pub fn read_role_policies(roles: &[RoleDetail], items: Vec<Map>) -> Vec<Option<Map>> {
    items
        .into_iter()
        .map(|mut item| {
            let role = opt_s(&item, "role_name")?;
            let name = opt_s(&item, "name")?;
            let document = roles
                .iter()
                .find(|r| r.role_name() == Some(role))?
                .role_policy_list()
                .iter()
                .find(|p| p.policy_name() == Some(name))?
                .policy_document()?;
            item.insert("policy".into(), Value::String(canonical_policy(document)));
            Some(item)
        })
        .collect()
}

/// Puts an inline policy on a role, or takes it off. The role's own policy has
/// tik's name, which a role policy may not take.
pub async fn apply_role_policy(iam: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let role = s(a, "role_name")?;
    let name = s(a, "name")?;
    if name == POLICY_NAME {
        return Err(ProviderError::new(format!(
            "the role policy name \"{POLICY_NAME}\" is the role's own policy's"
        )));
    }
    match change.operation {
        Operation::Create | Operation::Update => {
            put_policy(iam, role, name, s(a, "policy")?).await?;
            let mut attrs = a.clone();
            canonicalize(&mut attrs);
            Ok(attrs)
        }
        Operation::Delete => delete_policy(iam, role, name).await,
    }
}

/// Puts the inline policy `name` on `role`.
async fn put_policy(
    iam: &Client,
    role: &str,
    name: &str,
    document: &str,
) -> Result<(), ProviderError> {
    iam.put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document)
        .send()
        .await
        .map_err(|e| api_error("PutRolePolicy", e))?;
    Ok(())
}

/// Takes the inline policy `name` off `role`; one already gone is fine.
async fn delete_policy(iam: &Client, role: &str, name: &str) -> Result<Map, ProviderError> {
    let r = iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await;
    gone_ok("DeleteRolePolicy", r)
}

fn canonicalize(attrs: &mut Map) {
    for key in ["policy", "assume_policy"] {
        if let Some(text) = attrs.get(key).and_then(Value::as_str).map(canonical_policy) {
            attrs.insert(key.into(), Value::String(text));
        }
    }
}

pub async fn apply_profile(iam: &Client, change: &ChangeRequest) -> Result<Map, ProviderError> {
    let a = &change.planned;
    let name = s(a, "name")?;
    match change.operation {
        Operation::Create | Operation::Update => {
            let role = s(a, "role_name")?;
            let created = iam
                .create_instance_profile()
                .instance_profile_name(name)
                .path(PATH)
                .set_tags(Some(iam_tags(crate::attrs::tag_pairs(change))))
                .send()
                .await;
            // A create interrupted between the profile and its role left the profile
            // behind, invisible to the refresh: take it over rather than fail.
            let profile = match created {
                Ok(out) => out.instance_profile,
                Err(e) if code_of(&e) == Some("EntityAlreadyExists") => {
                    iam.get_instance_profile()
                        .instance_profile_name(name)
                        .send()
                        .await
                        .map_err(|e| api_error("GetInstanceProfile", e))?
                        .instance_profile
                }
                Err(e) => return Err(api_error("CreateInstanceProfile", e)),
            }
            .ok_or_else(|| {
                ProviderError::new(format!("IAM returned no instance profile {name}"))
            })?;
            if !profile.roles().iter().any(|r| r.role_name() == role) {
                iam.add_role_to_instance_profile()
                    .instance_profile_name(name)
                    .role_name(role)
                    .send()
                    .await
                    .map_err(|e| api_error("AddRoleToInstanceProfile", e))?;
            }
            let mut attrs = a.clone();
            attrs.insert("id".into(), Value::from(profile.instance_profile_id()));
            attrs.insert("arn".into(), Value::from(profile.arn()));
            Ok(attrs)
        }
        Operation::Delete => {
            if let Some(role) = opt_s(a, "role_name") {
                let r = iam
                    .remove_role_from_instance_profile()
                    .instance_profile_name(name)
                    .role_name(role)
                    .send()
                    .await;
                gone_ok("RemoveRoleFromInstanceProfile", r)?;
            }
            let r = iam
                .delete_instance_profile()
                .instance_profile_name(name)
                .send()
                .await;
            gone_ok("DeleteInstanceProfile", r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_policy;

    #[test]
    fn policies_compare_by_content_not_layout() {
        let plain = "{\"Version\": \"2012-10-17\", \"Statement\": []}";
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        assert_eq!(canonical_policy(plain), canonical_policy(encoded));
        assert_eq!(canonical_policy("%"), "%");
    }
}
