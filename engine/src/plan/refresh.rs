//! Refresh: what exists now, one provider read per resource type, with drift and orphans.

use super::*;

/// Reads every resource in state from its provider, one call per resource type,
/// all types at once (without `skip_health`, those whose read is a health check).
/// Returns the differences; `state` is left as it is.
pub async fn refresh(
    state: &State,
    providers: &Providers,
    skip_health: bool,
) -> Result<Refreshed, Diagnostics> {
    let mut by_type: IndexMap<(String, String), Vec<&ResourceState>> = IndexMap::new();
    let checks_health = |type_name: &str| {
        providers
            .schema(type_name)
            .is_some_and(|(_, s)| s.health.is_some())
    };
    for r in state
        .resources
        .values()
        .filter(|r| !(skip_health && checks_health(&r.type_name)))
    {
        by_type
            .entry((r.provider.clone(), r.type_name.clone()))
            .or_default()
            .push(r);
    }
    let mut known: IndexMap<String, Vec<ReadRequest>> = IndexMap::new();
    for ((provider, _), items) in &by_type {
        let entry = known.entry(provider.clone()).or_default();
        entry.extend(items.iter().map(|r| read_request(r, state)));
    }
    for provider in known.keys() {
        if let Some(p) = providers.get(provider) {
            p.begin_refresh().await;
        }
    }
    let mut discoveries = Vec::new();
    for (provider, items) in known {
        if let Some(p) = providers.get(&provider).cloned() {
            let lineage = state.lineage.clone();
            discoveries.push((
                provider,
                tokio::spawn(async move { p.discover(&lineage, &items).await }),
            ));
        }
    }
    let mut reads = Vec::new();
    for ((provider, type_name), items) in &by_type {
        let p = providers.get(provider).cloned().ok_or_else(|| {
            Diagnostics::from(Diagnostic::new(format!(
                "state holds {} resources of provider \"{provider}\", which this tik does not have",
                items.len()
            )))
        })?;
        let requests: Vec<ReadRequest> = items.iter().map(|r| read_request(r, state)).collect();
        let type_name = type_name.clone();
        reads.push(tokio::spawn(
            async move { p.read(&type_name, &requests).await },
        ));
    }
    let mut drift = Vec::new();
    let mut diags = Diagnostics::default();
    for (((provider, type_name), items), read) in by_type.iter().zip(reads) {
        let found = match read.await {
            Ok(Ok(found)) if found.len() == items.len() => found,
            Ok(Ok(_)) => {
                diags.push(Diagnostic::new(format!("provider {provider} answered a read of {type_name} with the wrong number of results")));
                continue;
            }
            Ok(Err(e)) => {
                diags.push(Diagnostic::new(format!(
                    "reading {type_name} resources failed: {e}"
                )));
                continue;
            }
            Err(e) => {
                diags.push(Diagnostic::new(format!(
                    "reading {type_name} resources failed: {e}"
                )));
                continue;
            }
        };
        for (r, now) in items.iter().zip(found) {
            let Some((kind, after)) = drift_of(r, now) else {
                continue;
            };
            drift.push(Drift {
                address: r.address.clone(),
                type_name: r.type_name.clone(),
                kind,
                before: (*r).clone(),
                after,
            });
        }
    }
    let orphans = orphans(discoveries, state, &mut diags).await;
    if diags.is_empty() {
        Ok(Refreshed { drift, orphans })
    } else {
        Err(diags)
    }
}

/// What a provider is asked to read of one resource in state.
fn read_request(r: &ResourceState, state: &State) -> ReadRequest {
    ReadRequest {
        address: r.address.clone(),
        attributes: r.attributes.clone(),
        pending: r.status == Status::Pending,
        lineage: state.lineage.clone(),
    }
}

/// How what a provider read (`now`) differs from the resource in state: its kind of
/// drift and what state should hold after, or `None` where nothing drifted.
fn drift_of(r: &ResourceState, now: Option<Map>) -> Option<(DriftKind, Option<ResourceState>)> {
    Some(match (now, r.status) {
        (None, Status::Pending) => (DriftKind::Unfinished, None),
        (None, _) => (DriftKind::Deleted, None),
        (Some(mut attrs), Status::Pending) => {
            let half_made = attrs.shift_remove(crate::provider::HALF_MADE).is_some();
            (
                DriftKind::Adopted,
                Some(ResourceState {
                    attributes: attrs,
                    status: if half_made {
                        Status::Tainted
                    } else {
                        Status::Ready
                    },
                    ..(*r).clone()
                }),
            )
        }
        (Some(mut attrs), _) if attrs.contains_key(crate::provider::HALF_MADE) => {
            attrs.shift_remove(crate::provider::HALF_MADE);
            (
                DriftKind::Changed,
                Some(ResourceState {
                    attributes: attrs,
                    status: Status::Tainted,
                    ..(*r).clone()
                }),
            )
        }
        (Some(attrs), _) if attrs != r.attributes => (
            DriftKind::Changed,
            Some(ResourceState {
                attributes: attrs,
                ..(*r).clone()
            }),
        ),
        (Some(_), _) => return None,
    })
}

/// A provider's discovery of what it holds, running.
type Discovery =
    tokio::task::JoinHandle<Result<Vec<crate::provider::Orphan>, crate::provider::ProviderError>>;

/// What each provider's discovery found that state does not hold, by address.
async fn orphans(
    discoveries: Vec<(String, Discovery)>,
    state: &State,
    diags: &mut Diagnostics,
) -> Vec<OrphanReport> {
    let mut orphans = Vec::new();
    for (provider, discovery) in discoveries {
        match discovery.await {
            Ok(Ok(found)) => orphans.extend(
                found
                    .into_iter()
                    .filter(|o| !state.resources.contains_key(&o.address))
                    .map(|o| OrphanReport {
                        address: o.address,
                        type_name: o.type_name,
                        provider: provider.clone(),
                        attributes: o.attributes,
                    }),
            ),
            Ok(Err(e)) => diags.push(Diagnostic::new(format!(
                "looking for orphans of provider {provider} failed: {e}"
            ))),
            Err(e) => diags.push(Diagnostic::new(format!(
                "looking for orphans of provider {provider} failed: {e}"
            ))),
        }
    }
    orphans.sort_by(|a, b| a.address.cmp(&b.address));
    orphans
}
