//! The local control socket: while a process holds a home's session ([`Engine::run`], the
//! desktop app), other commands on that home hand their work to it over `<home>/tandem.sock`
//! instead of opening a second MQTT connection with the same client id (which would take the
//! session away from the first).
//!
//! The protocol is one JSON [`Request`] line in, one JSON [`Reply`] line out, per connection.
//! The socket is created mode 0600 inside the 0700 home, so only its owner reaches it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::{Engine, Error, Result};

/// The socket's file name in a home directory.
pub const SOCKET_FILE: &str = "tandem.sock";
/// Longest request line accepted.
const MAX_REQUEST: usize = 128 * 1024;
/// How long a client waits for the running process to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Work a command hands to the process running the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// [`Engine::send`]; with `wait`, answered once the broker acknowledged it.
    Send {
        /// Chat id or name.
        chat: String,
        /// Text.
        text: String,
        /// Quoted message id.
        reply: Option<String>,
        /// Answer only once sent.
        wait: bool,
        /// The id the message must have (a bridge desktop chose it): a message already stored
        /// under it is answered as it is, nothing is sent twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// [`Engine::react`].
    React {
        /// Message id.
        message: String,
        /// Emoji ("" removes).
        emoji: String,
    },
    /// [`Engine::edit`].
    Edit {
        /// Message id.
        message: String,
        /// New text.
        text: String,
    },
    /// [`Engine::delete`].
    Delete {
        /// Message id.
        message: String,
    },
    /// [`Engine::mark_read`].
    Read {
        /// Chat id or name.
        chat: String,
    },
    /// Typing started or stopped in a chat (sent at once, never stored).
    Typing {
        /// Chat id or name.
        chat: String,
        /// Typing or stopped.
        on: bool,
    },
    /// [`Engine::group_create`].
    GroupCreate {
        /// The group's name.
        name: String,
        /// Contacts (names or account ids).
        members: Vec<String>,
    },
    /// [`Engine::group_add`].
    GroupAdd {
        /// The group (id or name).
        chat: String,
        /// The contact to add.
        member: String,
    },
    /// [`Engine::group_remove`].
    GroupRemove {
        /// The group (id or name).
        chat: String,
        /// The member to remove.
        member: String,
    },
    /// Publishes prepared messages on the session's connection (what `scan` and `unlink`
    /// prepare while a session runs); with `reload`, the session rereads this device's
    /// identity and syncs first (a device was linked or unlinked).
    Publish {
        /// The messages.
        items: Vec<Publication>,
        /// Reread identity, device list and syncs.
        reload: bool,
    },
    /// Bridge mode: whether the running session is connected to the phone now
    /// (`{"phone_reachable": bool}`; `null` from a session that is not in bridge mode).
    PhoneStatus,
    /// The broker the running session is connected to now (`{"broker": url}`; `null` when it
    /// is between brokers or is a bridge-mode desktop's).
    Connection,
    /// [`Engine::contact_add`].
    ContactAdd {
        /// The contact link.
        link: String,
        /// The name to save it under.
        name: Option<String>,
    },
}

/// One message to publish at QoS 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Kept by the broker as the topic's retained message.
    pub retain: bool,
}

/// The answer: `{"ok": value}` or `{"error": {"kind","message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The command's result, as its `--json` output.
    Ok(serde_json::Value),
    /// Why it failed.
    Error {
        /// The error kind (stable, snake case).
        kind: String,
        /// The message.
        message: String,
    },
}

impl Reply {
    /// A failed command's reply.
    pub(crate) fn error(e: &Error) -> Self {
        Reply::Error {
            kind: e.kind().to_owned(),
            message: e.to_string(),
        }
    }
}

/// A request on its way to the session loop, with where its reply goes.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// Hands work to a session running in this process ([`Engine::run_with`]): what the desktop
/// app and the benchmarks use instead of the socket. Cloneable; every clone talks to the same
/// session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub(crate) tx: mpsc::Sender<Pending>,
}

/// The receiving end of a [`SessionHandle`], given to [`Engine::run_with`].
#[derive(Debug)]
pub struct SessionRequests {
    pub(crate) rx: mpsc::Receiver<Pending>,
}

/// A handle and the requests it sends, for [`Engine::run_with`].
#[must_use]
pub fn session_channel() -> (SessionHandle, SessionRequests) {
    let (tx, rx) = mpsc::channel(256);
    (SessionHandle { tx }, SessionRequests { rx })
}

impl SessionHandle {
    /// Does `request` in the running session and returns its reply (for a `send` with `wait`,
    /// once the broker acknowledged the message).
    ///
    /// # Errors
    /// [`Error::BadInput`] when the session is not running.
    pub async fn call(&self, request: Request) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { request, reply })
            .await
            .map_err(|_| Error::BadInput("the session is not running".into()))?;
        answer
            .await
            .map_err(|_| Error::BadInput("the session stopped before answering".into()))
    }
}

/// The socket path of `home`.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join(SOCKET_FILE)
}

/// The listening side, owned by the process that runs the session. Removes its socket file
/// when dropped.
#[derive(Debug)]
pub(crate) struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlServer {
    /// Listens on the home's socket; requests arrive on the returned channel. Refuses when
    /// another live process already listens there.
    pub(crate) async fn start(home: &Path, tx: mpsc::Sender<Pending>) -> Result<Self> {
        let path = socket_path(home);
        if tokio::net::UnixStream::connect(&path).await.is_ok() {
            return Err(Error::BadInput(format!(
                "another Tandem process is running on {} (its socket {} answers); stop it first",
                home.display(),
                path.display()
            )));
        }
        // A socket file left by a process that died.
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).map_err(|e| Error::Home {
            path: path.clone(),
            source: e,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| Error::Home {
                    path: path.clone(),
                    source: e,
                },
            )?;
        }
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_client(stream, tx).await {
                        tracing::debug!(error = %e, "a control client failed");
                    }
                });
            }
        });
        Ok(Self { path, task })
    }
}

async fn serve_client(
    stream: tokio::net::UnixStream,
    tx: mpsc::Sender<Pending>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::Error {
            kind: "bad_input".into(),
            message: format!("not a Tandem control request: {e}"),
        },
        Ok(request) => {
            let (reply_tx, reply_rx) = oneshot::channel();
            if tx
                .send(Pending {
                    request,
                    reply: reply_tx,
                })
                .await
                .is_err()
            {
                Reply::Error {
                    kind: "stopped".into(),
                    message: "the running session is stopping".into(),
                }
            } else {
                reply_rx.await.unwrap_or(Reply::Error {
                    kind: "stopped".into(),
                    message: "the running session stopped before answering".into(),
                })
            }
        }
    };
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

use tokio::io::AsyncReadExt as _;

/// Whether a process runs this home's session (its control socket answers).
pub(crate) async fn session_running(home: &Path) -> bool {
    tokio::net::UnixStream::connect(socket_path(home))
        .await
        .is_ok()
}

impl Engine {
    /// Hands `request` to the process running this home's session, if one is: `Ok(None)` when
    /// none listens (do the work here).
    ///
    /// # Errors
    /// [`Error::BadInput`] when the running process does not answer in time or answers
    /// something that is not a reply.
    pub async fn hand_over(home: &Path, request: &Request) -> Result<Option<Reply>> {
        let path = socket_path(home);
        let Ok(stream) = tokio::net::UnixStream::connect(&path).await else {
            return Ok(None);
        };
        let exchange = async {
            let (read, mut write) = stream.into_split();
            let mut bytes = serde_json::to_vec(request).unwrap_or_default();
            bytes.push(b'\n');
            write.write_all(&bytes).await?;
            let mut line = String::new();
            BufReader::new(read).read_line(&mut line).await?;
            Ok::<_, std::io::Error>(line)
        };
        let line = tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::BadInput("the running Tandem process did not answer".into()))?
            .map_err(|e| Error::BadInput(format!("talking to the running Tandem process: {e}")))?;
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| Error::BadInput(format!("the running Tandem process answered oddly: {e}")))
    }
}
