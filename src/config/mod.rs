//! Configuration: oslo.config INI or TOML files, environment overrides, one typed model.

mod model;

pub use model::*;
