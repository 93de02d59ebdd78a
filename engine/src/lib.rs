//! tik-engine: configuration, the resource graph, plans, apply and state.
//!
//! The engine knows no cloud by name: providers and state backends plug in through the
//! [`provider::Provider`] and [`state::Backend`] traits, and the binary wires them in.

pub mod addr;
pub mod apply;
pub mod builtin;
pub mod config;
pub mod connection;
pub mod controller;
pub mod diag;
pub mod eval;
pub mod fmt;
pub mod graph;
pub mod ops;
pub mod order;
pub mod plan;
pub mod provider;
pub mod scale;
pub mod state;
pub mod timefmt;
pub mod value;
pub mod walk;
