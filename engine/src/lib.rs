//! tik-engine: configuration, the resource graph, plans, apply and state.
//!
//! The engine knows no cloud by name: providers and state backends plug in through the
//! [`provider::Provider`] and [`state::Backend`] traits, and the binary wires them in.

pub mod diag;
pub mod eval;
pub mod value;
pub mod addr;
pub mod config;
pub mod builtin;
pub mod provider;
pub mod state;
pub mod timefmt;
pub mod graph;
pub mod walk;
pub mod plan;
pub mod apply;
pub mod ops;
pub mod fmt;
