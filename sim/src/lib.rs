//! Pollen's field simulator: a seeded, deterministic discrete-event simulation of phones on simulated radios, each
//! running the real `pollen-router` core, with baselines (an ideal epidemic oracle, direct delivery, binary
//! spray-and-wait) run on the same contacts for comparison.
#![warn(missing_docs)]

pub mod contacts;
pub mod energy;
pub mod engine;
pub mod metrics;
pub mod mobility;
pub mod model;
pub mod radio;
pub mod report;
pub mod results;
pub mod routers;
pub mod run;
pub mod trace;
pub mod workload;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
