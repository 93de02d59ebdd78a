//! The `tik` binary end to end, as a user runs it: one test target, a module per
//! area, sharing `tests/common/`. Tests that need a tool the machine lacks fail
//! saying how to install it; `tests/run` installs them all.

#[path = "../common/mod.rs"]
mod common;
/// moto's server and the fault proxy in front of it, shared with the AWS provider's tests.
#[path = "../../providers/aws/tests/moto/mod.rs"]
mod moto;

mod aws;
mod aws_runtimes;
mod container;
mod controller;
mod discover;
mod errors;
mod examples;
mod kill_points;
mod language;
mod lifecycle;
mod plans;
mod postgres;
mod postgres_source;
mod prometheus;
mod pypi_runtimes;
mod runtime_scripts;
mod runtimes;
mod safety;
mod scale;
mod spark;
mod state_remote;
mod terminal;
mod zookeeper;
