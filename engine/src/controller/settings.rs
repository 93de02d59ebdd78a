//! A cluster's `controller` block: how patient the controller is with it.

use crate::addr::Address;
use crate::value::{Map, Value};
use serde::{Deserialize, Serialize};

/// What a cluster's `controller { ... }` block says, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub cluster: Address,
    /// Consecutive failed health checks of a service (one per round) before the
    /// controller recovers it: one slow answer does not count.
    pub unhealthy_after: u64,
    /// Restarts of a service that keeps failing before its node is replaced.
    pub recovery_attempts: u64,
    /// Seconds a round waits after a round whose changes failed (a node that cannot
    /// be created); doubled after each failure in a row, up to 16 times.
    pub backoff: u64,
    /// Seconds between rounds of the controller apply installs on the head.
    pub interval: u64,
    /// Seconds between the rounds that check its services' health (a check runs a
    /// process per service); the rounds between look for lost nodes alone.
    pub health_interval: u64,
    /// Whether apply installs a controller on the cluster's head (`on = "head"`);
    /// otherwise one runs where a person starts `tik controller`.
    pub on_head: bool,
}

const KEYS: [(&str, u64, u64, u64); 5] = [
    // name, default, least, most
    ("unhealthy_after", 3, 1, 1000),
    ("recovery_attempts", 3, 0, 1000),
    ("backoff", 30, 1, 86_400),
    ("interval", 5, 1, 3600),
    ("health_interval", 10, 1, 3600),
];

impl Control {
    pub fn defaults(cluster: &Address) -> Control {
        Control {
            cluster: cluster.clone(),
            unhealthy_after: KEYS[0].1,
            recovery_attempts: KEYS[1].1,
            backoff: KEYS[2].1,
            interval: KEYS[3].1,
            health_interval: KEYS[4].1,
            on_head: false,
        }
    }

    /// The settings of a cluster's evaluated block; an error names the attribute at
    /// fault (`["controller", "backoff"]`) and why.
    pub fn of_cluster(cluster: &Address, config: &Map) -> Result<Control, crate::walk::Fault> {
        let mut c = Control::defaults(cluster);
        let Some(Value::Object(block)) = config.get("controller") else {
            return Ok(c);
        };
        for (i, (key, _, least, most)) in KEYS.iter().enumerate() {
            let n = match block.get(*key) {
                None | Some(Value::Null) => continue,
                Some(Value::Unknown) => continue,
                Some(Value::Number(n))
                    if n.fract() == 0.0 && *n >= *least as f64 && *n <= *most as f64 =>
                {
                    *n as u64
                }
                Some(other) => {
                    let unit = if matches!(*key, "backoff" | "interval" | "health_interval") {
                        " seconds"
                    } else {
                        ""
                    };
                    return Err((
                        vec!["controller".into(), key.to_string()],
                        format!(
                            "controller {key} must be a whole number from {least} to {most}{unit}, got {other}"
                        ),
                    ));
                }
            };
            match i {
                0 => c.unhealthy_after = n,
                1 => c.recovery_attempts = n,
                2 => c.backoff = n,
                3 => c.interval = n,
                _ => c.health_interval = n,
            }
        }
        c.on_head = match block.get("on") {
            None | Some(Value::Null) | Some(Value::Unknown) => false,
            Some(Value::String(s)) if s == "head" => true,
            Some(Value::String(s)) if s == "here" => false,
            Some(other) => {
                return Err((
                    vec!["controller".into(), "on".into()],
                    format!(
                        "controller on must be \"head\" (apply installs a controller on the cluster's head) or \"here\" (you run tik controller where you want it), got {other}"
                    ),
                ))
            }
        };
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_block_sets_what_it_names_and_refuses_what_is_out_of_range() {
        let etl = Address::new().name("cluster").name("etl");
        let block = |pairs: &[(&str, Value)]| {
            let mut b = Map::new();
            for (k, v) in pairs {
                b.insert(k.to_string(), v.clone());
            }
            let mut config = Map::new();
            config.insert("controller".into(), Value::Object(b));
            config
        };
        assert_eq!(
            Control::of_cluster(&etl, &Map::new()),
            Ok(Control::defaults(&etl))
        );
        let c = Control::of_cluster(
            &etl,
            &block(&[
                ("unhealthy_after", Value::Number(2.0)),
                ("backoff", Value::Number(5.0)),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.unhealthy_after, c.recovery_attempts, c.backoff),
            (2, 3, 5)
        );
        let c = Control::of_cluster(&etl, &block(&[("on", Value::from("head"))])).unwrap();
        assert!(c.on_head);
        for (key, bad) in [
            ("on", Value::from("laptop")),
            ("unhealthy_after", Value::Number(0.0)),
            ("recovery_attempts", Value::Number(1.5)),
            ("backoff", Value::from("5m")),
        ] {
            let (path, message) = Control::of_cluster(&etl, &block(&[(key, bad)])).unwrap_err();
            assert_eq!(path, ["controller", key]);
            assert!(
                message.starts_with(&format!("controller {key} must be")),
                "{message}"
            );
        }
    }
}
