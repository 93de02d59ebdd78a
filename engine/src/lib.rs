//! tik-engine: configuration, the resource graph, plans, apply and state.
//!
//! The engine knows no cloud by name: providers and state backends plug in through the
//! [`provider::Provider`] and [`state::Backend`] traits, and the binary wires them in.

pub mod diag;
pub mod eval;
pub mod value;
