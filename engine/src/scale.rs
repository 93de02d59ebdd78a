//! `tik scale`: what a request for a pool's size means, checked against the pools a
//! plan found. What it records is a desired size; the controller or the next apply
//! brings the pool there.

use crate::addr::{Address, Segment};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::state::JournalEntry;
use crate::walk::Pool;

/// What a user typed: a cluster (its name, or its address in a module), a pool where
/// the cluster has more than one, and the size.
pub struct Request<'a> {
    pub cluster: &'a str,
    pub pool: Option<&'a str>,
    pub size: &'a str,
}

/// An accepted request: the pool as it was, its new size and the record that says so.
#[derive(Debug)]
pub struct Scaled {
    pub pool: Pool,
    pub size: u64,
    pub entry: JournalEntry,
}

/// How a cluster is named to a user: a root cluster by its name, one in a module by
/// its address (as `tik status` names them).
pub fn cluster_label(cluster: &Address) -> String {
    match cluster.0.as_slice() {
        [Segment::Name(c), Segment::Name(name)] if c == "cluster" => name.clone(),
        _ => cluster.to_string(),
    }
}

/// The address of a cluster named as `cluster_label` names it.
pub fn cluster_address(label: &str) -> Option<Address> {
    if label.contains('.') {
        Address::parse(label).ok()
    } else {
        Some(Address::new().name("cluster").name(label))
    }
}

/// Checks `request` against `pools`: an unknown cluster or pool gets the close name,
/// a size that is not a whole number or is outside the pool's bounds says which.
pub fn request(pools: &[Pool], request: &Request<'_>) -> Result<Scaled, Diagnostics> {
    let of_cluster: Vec<&Pool> = pools
        .iter()
        .filter(|p| {
            cluster_label(&p.cluster) == request.cluster || p.cluster.to_string() == request.cluster
        })
        .collect();
    if of_cluster.is_empty() {
        let mut labels: Vec<String> = pools.iter().map(|p| cluster_label(&p.cluster)).collect();
        labels.dedup();
        let help = did_you_mean(request.cluster, labels.iter().map(String::as_str))
            .unwrap_or_else(|| match labels.len() {
                0 => "no cluster of this configuration has worker pools (a workers \"NAME\" { min = N } block)".into(),
                _ => format!("the clusters with worker pools: {}", labels.join(", ")),
            });
        return Err(Diagnostic::new(format!(
            "no cluster \"{}\" with worker pools in this configuration",
            request.cluster
        ))
        .help(help)
        .into());
    }
    let label = cluster_label(&of_cluster[0].cluster);
    let names: Vec<&str> = of_cluster.iter().map(|p| p.pool.as_str()).collect();
    let pool = match request.pool {
        Some(wanted) => of_cluster
            .iter()
            .find(|p| p.pool == wanted)
            .ok_or_else(|| {
                Diagnostics::from(
                    Diagnostic::new(format!("cluster {label} has no pool \"{wanted}\"")).help(
                        did_you_mean(wanted, names.iter().copied())
                            .unwrap_or_else(|| format!("its pools: {}", names.join(", "))),
                    ),
                )
            })?,
        None if of_cluster.len() == 1 => &of_cluster[0],
        None => {
            return Err(Diagnostic::new(format!(
                "cluster {label} has {} worker pools: say which with --pool",
                of_cluster.len()
            ))
            .help(format!("its pools: {}", names.join(", ")))
            .into())
        }
    };
    let text = request.size.trim();
    let size: u64 = text.parse().map_err(|_| {
        Diagnostics::from(
            Diagnostic::new(format!(
                "the size must be a whole number of workers, got \"{}\"",
                request.size.escape_debug()
            ))
            .help(format!(
                "for example: tik scale {label} --pool {} {}",
                pool.pool, pool.max
            )),
        )
    })?;
    if size < pool.min || size > pool.max {
        let (side, bound) = if size < pool.min {
            ("less than its min", "min")
        } else {
            ("more than its max", "max")
        };
        return Err(Diagnostic::new(format!(
            "workers \"{}\" of cluster {label} takes from {} to {} workers: {size} is {side}",
            pool.pool, pool.min, pool.max
        ))
        .help(format!(
            "change {bound} of the pool in the configuration and apply it first, or ask for a size from {} to {}",
            pool.min, pool.max
        ))
        .into());
    }
    Ok(Scaled {
        pool: (*pool).clone(),
        size,
        entry: JournalEntry::Size {
            cluster: pool.cluster.clone(),
            pool: pool.pool.clone(),
            size: Some(size),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cluster: &str, name: &str, min: u64, max: u64) -> Pool {
        Pool {
            cluster: Address::parse(cluster).unwrap(),
            pool: name.into(),
            min,
            max,
            size: min,
            recorded: None,
            idle_timeout: None,
        }
    }

    fn ask(pools: &[Pool], cluster: &str, p: Option<&str>, size: &str) -> Result<u64, String> {
        request(
            pools,
            &Request {
                cluster,
                pool: p,
                size,
            },
        )
        .map(|s| s.size)
        .map_err(|d| {
            d.0.iter()
                .map(|d| format!("{} / {}", d.message, d.help.clone().unwrap_or_default()))
                .collect()
        })
    }

    #[test]
    fn a_size_within_bounds_is_recorded_for_its_pool() {
        let pools = [
            pool("cluster.etl", "default", 1, 5),
            pool("module.m.cluster.ml", "gpu", 0, 2),
        ];
        assert_eq!(ask(&pools, "etl", None, "4"), Ok(4));
        assert_eq!(ask(&pools, "cluster.etl", Some("default"), " 1 "), Ok(1));
        assert_eq!(ask(&pools, "module.m.cluster.ml", None, "2"), Ok(2));
        let s = request(
            &pools,
            &Request {
                cluster: "etl",
                pool: None,
                size: "3",
            },
        )
        .unwrap();
        assert_eq!(
            s.entry,
            JournalEntry::Size {
                cluster: Address::parse("cluster.etl").unwrap(),
                pool: "default".into(),
                size: Some(3)
            }
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong_and_what_is_there() {
        let pools = [
            pool("cluster.etl", "default", 1, 5),
            pool("cluster.etl", "big", 0, 2),
        ];
        let e = ask(&pools, "elt", Some("default"), "2").unwrap_err();
        assert!(
            e.contains("no cluster \"elt\"") && e.contains("did you mean \"etl\"?"),
            "{e}"
        );
        let e = ask(&pools, "etl", None, "2").unwrap_err();
        assert!(
            e.contains("say which with --pool") && e.contains("default, big"),
            "{e}"
        );
        let e = ask(&pools, "etl", Some("defualt"), "2").unwrap_err();
        assert!(
            e.contains("no pool \"defualt\"") && e.contains("did you mean \"default\"?"),
            "{e}"
        );
        for bad in ["two", "-1", "2.5", "", "1e3", "\u{1b}[2J"] {
            let e = ask(&pools, "etl", Some("default"), bad).unwrap_err();
            assert!(e.contains("must be a whole number"), "{bad}: {e}");
            assert!(!e.contains('\u{1b}'), "{e}");
        }
        let e = ask(&pools, "etl", Some("default"), "6").unwrap_err();
        assert!(
            e.contains("takes from 1 to 5 workers: 6 is more than its max"),
            "{e}"
        );
        let e = ask(&pools, "etl", Some("default"), "0").unwrap_err();
        assert!(e.contains("0 is less than its min"), "{e}");
        let e = ask(&[], "etl", None, "1").unwrap_err();
        assert!(
            e.contains("no cluster of this configuration has worker pools"),
            "{e}"
        );
    }
}
