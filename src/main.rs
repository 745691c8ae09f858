//! The `k8s-gateway` binary: parse options, start the server, stop on a signal.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use k8s_gateway::app::{self, Server, render_once};
use k8s_gateway::config::{Cli, Command, Config, ExplainArgs, LogFormat, Output};
use k8s_gateway::zone::render::zone_files;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Exit code for a bad option or path, as for any command-line usage error.
const USAGE_ERROR: u8 = 2;

/// `explain`'s exit code when the name gets no records, so scripts can test it.
const NOT_SERVED: u8 = 1;

/// How long `render` and `explain` wait for the cluster to be listed.
const RENDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e.to_string()),
    };
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Render(args) => {
            let config = match Config::from_render_args(args) {
                Ok(config) => config,
                Err(e) => return usage_error(&format!("error: {e}")),
            };
            init_logging(LogFormat::Text);
            return match render(&config) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Command::Explain(args) => return explain(args),
    };
    let log_format = args.log_format;
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(e) => return usage_error(&format!("error: {e}")),
    };
    init_logging(log_format);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// No usable Kubernetes configuration is a usage error (exit 2, one line); anything
/// else that stops the server is a failure.
fn fail(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<app::Error>() {
        Some(app::Error::Cluster(cluster)) => usage_error(&format!("error: {cluster}")),
        _ => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn render(config: &Config) -> anyhow::Result<String> {
    let zone = render_once(config, RENDER_TIMEOUT).await?;
    Ok(zone_files(&zone))
}

/// `k8s-gateway explain NAME`: what `/explain?name=` says, for a terminal or a script.
fn explain(args: ExplainArgs) -> ExitCode {
    let output = args.output;
    let (config, name) = match Config::from_explain_args(args) {
        Ok(parsed) => parsed,
        Err(e) => return usage_error(&format!("error: {e}")),
    };
    // Warnings only (an unreadable manifest, a cluster that does not answer): the answer
    // is the output.
    init_logging_at(LogFormat::Text, "warn");
    let explanation = match build_once(&config) {
        Ok(zone) => zone.explain(&name),
        Err(e) => return fail(&e),
    };
    match output {
        Output::Table => print!("{}", explanation.to_table()),
        Output::Json => match serde_json::to_string_pretty(&explanation) {
            Ok(json) => println!("{json}"),
            Err(e) => return fail(&e.into()),
        },
    }
    if explanation.is_served() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_SERVED)
    }
}

#[tokio::main]
async fn build_once(config: &Config) -> anyhow::Result<k8s_gateway::zone::Zone> {
    Ok(render_once(config, RENDER_TIMEOUT).await?)
}

/// One line on stderr saying what is wrong; clap's usage and tips are left out.
fn usage_error(message: &str) -> ExitCode {
    // The first paragraph is the error (clap lists missing options on the next lines).
    let first: Vec<&str> = message
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    eprintln!("k8s-gateway: {}", first.join(" "));
    ExitCode::from(USAGE_ERROR)
}

fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Logging with `default` as the level when `RUST_LOG` is unset.
fn init_logging_at(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives while we start (or right after the address is
    // logged) must stop us cleanly, not kill us with the default action.
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    let shutdown = CancellationToken::new();
    let server = Server::start(config, shutdown.clone())
        .await
        .context("cannot start")?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "started");
    signals.wait().await;
    tracing::info!("stopping: finishing answers in flight");
    shutdown.cancel();
    server.wait().await.context("stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (Kubernetes) and SIGINT (a terminal), caught from the moment they are installed.
struct Signals {
    term: Signal,
    interrupt: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
