//! `simulate`: runs the real monitor against an in-process simulated cluster and Masakari.

pub mod scenario;
