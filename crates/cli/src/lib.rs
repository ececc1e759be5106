//! What `tandem` and `tandem-phone` share: the global options, the read commands (`chats`,
//! `history`, `search`, `status`, `export`) and how their results are printed (`--json` or
//! text).
//! Argument parsing and output only; the work happens in `tandem-engine`.

pub mod broker;
pub mod devices;
pub mod messaging;
pub mod output;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tandem_engine::{Engine, ExportFormat, Role};

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The device's data directory (default: the platform's data dir; env TANDEM_HOME).
    #[arg(long, global = true, env = "TANDEM_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// The home directory for `role`: `--home`, else `TANDEM_HOME`, else the platform default.
    pub fn home(&self, role: Role) -> anyhow::Result<PathBuf> {
        match &self.home {
            Some(home) => Ok(home.clone()),
            None => Ok(tandem_engine::default_home(role)?),
        }
    }
}

/// The read commands both programs have.
#[derive(Debug, Subcommand)]
pub enum Read {
    /// List the chats: name, kind, message count, last activity.
    Chats,
    /// Show a chat's messages, oldest first: the newest N, or the N before a message.
    History {
        /// A chat id or an exact chat name.
        chat: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Show the messages older than this message id.
        #[arg(long, value_name = "MSG_ID")]
        before: Option<String>,
    },
    /// Search all messages, newest first.
    Search {
        /// Words to find (all must match; the last may be a prefix; accents and case ignored).
        query: String,
        /// Only this chat (an id or an exact name).
        #[arg(long)]
        chat: Option<String>,
        /// How many hits.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Account, device, mode, store counts and sync progress.
    Status,
    /// Write a chat, or every chat, to a file: JSON, or one self-contained HTML page to read
    /// in a browser. The file appears only once complete (an older one is replaced).
    Export {
        /// The file format: json or html.
        #[arg(long, value_name = "json|html")]
        format: ExportFormat,
        /// Only this chat (an id or an exact name; default: every chat).
        #[arg(long)]
        chat: Option<String>,
        /// The file to write.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Runs a read command against the engine and prints the result.
pub fn run_read(engine: &Engine, cmd: &Read, json: bool) -> anyhow::Result<()> {
    match cmd {
        Read::Chats => output::chats(&engine.chats()?, json),
        Read::History {
            chat,
            limit,
            before,
        } => output::history(&engine.history(chat, *limit, before.as_deref())?, json),
        Read::Search { query, chat, limit } => {
            output::search(&engine.search(query, chat.as_deref(), *limit)?, json)
        }
        Read::Status => output::status(&devices::runtime()?.block_on(engine.status_live())?, json),
        Read::Export {
            format,
            chat,
            output: file,
        } => {
            // Drawn on stderr, and only when it is a terminal.
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} messages ({percent}%)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let report = engine.export(*format, chat.as_deref(), file, &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            output::export(&report?, json)
        }
    }
}

/// Logs go to stderr; `TANDEM_LOG` sets the filter (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rumqttd=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Ends the program with a one-line error on stderr and exit code 1.
/// A reader that closed the pipe early (`tandem chats | head`) is not an error.
pub fn exit_with(e: &anyhow::Error) -> std::process::ExitCode {
    let closed_pipe = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if closed_pipe {
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!("error: {}", describe(e));
    std::process::ExitCode::FAILURE
}

/// The error and its causes in one line, leaving out a cause whose text the message before it
/// already quotes.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
