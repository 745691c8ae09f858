//! The `k8s-gateway` binary: parse options, start the server, stop on a signal.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use k8s_gateway::app::{self, Server, render_once};
use k8s_gateway::config::{Cli, Command, Config, ExplainArgs, LogFormat, Output};
use k8s_gateway::zone::render::zone_files;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Returns the free pages of every heap to the system. The system allocator (glibc's)
/// keeps what a build freed (the parsed manifests, the zone replaced) for reuse, so
/// without a trim after each rebuild the resident memory stays at a load's peak. The
/// system allocator trimmed also beat mimalloc, which kept its peak resident (README,
/// Performance).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
            init_logging(config.log_format);
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
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(e) => return usage_error(&format!("error: {e}")),
    };
    init_logging(config.log_format);
    k8s_gateway::rebuild::release_free_memory_with(release_free_memory);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Why the binary stops with an error; the exit code follows from the variant.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("cannot start")]
    Start(#[source] app::Error),
    #[error("stopped with an error")]
    Stopped(#[source] app::Error),
    #[error("cannot build the zone")]
    Render(#[source] app::Error),
    #[error("cannot write the answer as JSON")]
    Json(#[source] serde_json::Error),
}

/// No usable Kubernetes configuration is a usage error (exit 2, one line); anything
/// else that stops the server is a failure, logged with its causes.
fn fail(e: &Failure) -> ExitCode {
    match e {
        Failure::Start(cause) | Failure::Render(cause) if cause.is_usage() => {
            usage_error(&format!("error: {cause}"))
        }
        _ => {
            tracing::error!("{}", causes(e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once (a message that already quotes
/// its cause does not repeat it).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[tokio::main]
async fn render(config: &Config) -> Result<String, Failure> {
    let zone = render_once(config, RENDER_TIMEOUT)
        .await
        .map_err(Failure::Render)?;
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
            Err(e) => return fail(&Failure::Json(e)),
        },
    }
    if explanation.is_served() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_SERVED)
    }
}

#[tokio::main]
async fn build_once(config: &Config) -> Result<k8s_gateway::zone::Zone, Failure> {
    render_once(config, RENDER_TIMEOUT)
        .await
        .map_err(Failure::Render)
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
async fn run(config: Config) -> Result<(), Failure> {
    // Handlers first: a SIGTERM that arrives while we start (or right after the address is
    // logged) must stop us cleanly, not kill us with the default action.
    let mut signals = Signals::install().map_err(Failure::Signals)?;
    let shutdown = CancellationToken::new();
    let server = Server::start(config, shutdown.clone())
        .await
        .map_err(Failure::Start)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "started");
    signals.wait().await;
    tracing::info!("stopping: finishing answers in flight");
    shutdown.cancel();
    server.wait().await.map_err(Failure::Stopped)?;
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
