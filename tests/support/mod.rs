//! Helpers shared by the integration tests.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod e2e_stack;
pub mod monitor;
