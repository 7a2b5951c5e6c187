//! The command line.
//!
//! `masakari-hostmonitor [--config-file PATH]... [--config-dir DIR]... [--dry-run]` runs the
//! monitor; `check-config` validates and prints the configuration; `simulate` runs a scenario.
//! The configuration flags may also follow the subcommand; they are read in command-line order
//! across both places.

use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{SourceArg, Sources};

/// Kubernetes-native host monitor for OpenStack Masakari.
///
/// Reads masakarimonitors.conf (oslo.config INI) or TOML, watches Kubernetes Nodes and sends a
/// COMPUTE_HOST notification to Masakari when a node fails.
#[derive(Debug, Parser)]
#[command(name = "masakari-hostmonitor", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Monitor and log every decision, but send no notification. Runs without [api] auth_url.
    #[arg(long)]
    pub dry_run: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Configuration sources.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Read this configuration file (INI, or TOML when the name ends in .toml). Repeatable; files
    /// and directories are read in command-line order and later values win. Without any
    /// --config-file, the first masakarimonitors.conf and masakari-hostmonitor.conf found in
    /// ~/.masakarimonitors/, ~/, /etc/masakarimonitors/ and /etc/ are read.
    #[arg(long = "config-file", value_name = "PATH")]
    pub config_file: Vec<PathBuf>,

    /// Read every *.conf file of this directory, in name order. Repeatable. Without any
    /// --config-dir, the masakarimonitors.conf.d and masakari-hostmonitor.conf.d directories
    /// found in the same places are read.
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print every option with its effective value and origin
    /// (default, file:line or environment variable). Secrets print as ***. Exits 2 when the
    /// configuration is invalid.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },

    /// Run a failure scenario against in-process fakes of Kubernetes, Keystone and Masakari.
    Simulate {
        /// The scenario: a built-in name or a TOML file.
        scenario: Option<String>,

        /// Run on the wall clock instead of simulated time.
        #[arg(long)]
        real_time: bool,

        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,

        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The parsed command line with the configuration sources in command-line order.
#[derive(Debug)]
pub struct Invocation {
    pub cli: Cli,
    pub sources: Sources,
}

impl Invocation {
    /// Parses the process arguments; exits with clap's message on a usage error.
    pub fn from_env() -> Self {
        Self::from_matches(Cli::command().get_matches()).unwrap_or_else(|error| error.exit())
    }

    /// Parses `args` (the first item is the program name).
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::from_matches(Cli::command().try_get_matches_from(args)?)
    }

    fn from_matches(matches: ArgMatches) -> Result<Self, clap::Error> {
        let sources = Sources::new(ordered_sources(&matches));
        let cli = Cli::from_arg_matches(&matches)?;
        Ok(Invocation { cli, sources })
    }
}

/// Interleaves `--config-file` and `--config-dir` by their position on the command line, which
/// decides which value wins: those before the subcommand first, then those after it.
fn ordered_sources(matches: &ArgMatches) -> Vec<SourceArg> {
    let mut ordered = Vec::new();
    let mut level = Some(matches);
    while let Some(current) = level {
        let mut indexed: Vec<(usize, SourceArg)> = Vec::new();
        collect(current, "config_file", SourceArg::File, &mut indexed);
        collect(current, "config_dir", SourceArg::Dir, &mut indexed);
        indexed.sort_by_key(|(index, _)| *index);
        ordered.extend(indexed.into_iter().map(|(_, arg)| arg));
        level = current.subcommand().map(|(_, sub)| sub);
    }
    ordered
}

fn collect(
    matches: &ArgMatches,
    id: &str,
    make: fn(PathBuf) -> SourceArg,
    into: &mut Vec<(usize, SourceArg)>,
) {
    if !matches!(matches.try_contains_id(id), Ok(true)) {
        return;
    }
    let (Some(indices), Some(values)) = (matches.indices_of(id), matches.get_many::<PathBuf>(id))
    else {
        return;
    };
    into.extend(
        indices
            .zip(values)
            .map(|(index, path)| (index, make(path.clone()))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(args: &[&str]) -> Vec<SourceArg> {
        Invocation::try_parse_from(args)
            .expect("parses")
            .sources
            .args
    }

    #[test]
    fn sources_keep_command_line_order() {
        let parsed = sources(&[
            "m",
            "--config-dir",
            "d1",
            "--config-file",
            "f1",
            "--config-dir",
            "d2",
        ]);
        let expected = [
            SourceArg::Dir("d1".into()),
            SourceArg::File("f1".into()),
            SourceArg::Dir("d2".into()),
        ];
        assert_eq!(parsed, expected);
    }

    #[test]
    fn config_flags_after_subcommand() {
        let invocation = Invocation::try_parse_from([
            "m",
            "--config-file",
            "a",
            "check-config",
            "--config-dir",
            "b",
            "--config-file",
            "c",
        ])
        .expect("parses");
        assert!(matches!(
            invocation.cli.command,
            Some(Command::CheckConfig { .. })
        ));
        let expected = [
            SourceArg::File("a".into()),
            SourceArg::Dir("b".into()),
            SourceArg::File("c".into()),
        ];
        assert_eq!(invocation.sources.args, expected);
    }

    #[test]
    fn simulate_options_parse() {
        let invocation = Invocation::try_parse_from([
            "m",
            "simulate",
            "rack-loss",
            "--real-time",
            "--output",
            "json",
        ])
        .expect("parses");
        let Some(Command::Simulate {
            scenario,
            real_time,
            output,
            ..
        }) = invocation.cli.command
        else {
            panic!("expected simulate");
        };
        assert_eq!(scenario.as_deref(), Some("rack-loss"));
        assert!(real_time);
        assert_eq!(output, OutputFormat::Json);
    }

    #[test]
    fn command_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
