//! tend, the library behind the `tend` binary: the config layer and the supervisor at run time.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod export;
pub mod hash;
pub mod import;
pub mod paths;
pub mod style;
