//! The messaging commands both programs have: `send`, `react`, `edit`, `delete`, `read`,
//! `typing`, `contact-link`, `contact-add`, and `run`. While a `run` process (or the desktop
//! app) holds the home's session, the work is handed to it over the home's control socket;
//! otherwise it is written here and sent on a short connection of this process.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use tandem_engine::{Engine, Event, Reply, Request};

use crate::broker::StopSignal;
use crate::devices::{Reporter, runtime};
use crate::output;

/// How long a command without `--wait` tries to hand its messages to the broker.
const SEND_AT_ONCE: Duration = Duration::from_secs(5);
/// How long `--wait` waits for the broker's acknowledgement.
const WAIT_FOR_BROKER: Duration = Duration::from_secs(30);

/// Messaging commands.
#[derive(Debug, Subcommand)]
pub enum Messaging {
    /// Send a message (queued at once; sent now if the broker answers, else by the next run).
    Send {
        /// The chat: its id or its exact name.
        chat: String,
        /// The text.
        text: String,
        /// Quote this message (its id).
        #[arg(long, value_name = "MSG_ID")]
        reply: Option<String>,
        /// Return only once the broker has acknowledged the message.
        #[arg(long)]
        wait: bool,
    },
    /// React to a message with an emoji ("" removes your reaction).
    React {
        /// The message id.
        message: String,
        /// The emoji.
        emoji: String,
    },
    /// Replace the text of one of your messages, on every device.
    Edit {
        /// The message id.
        message: String,
        /// The new text.
        text: String,
    },
    /// Delete one of your messages for everyone.
    Delete {
        /// The message id.
        message: String,
    },
    /// Mark a chat read (read receipts go to the senders).
    Read {
        /// The chat: its id or its exact name.
        chat: String,
    },
    /// Tell a chat you are typing (needs a running session: `run`).
    Typing {
        /// The chat: its id or its exact name.
        chat: String,
        /// Stopped typing.
        #[arg(long)]
        off: bool,
    },
    /// Group chats: create one, add or remove members.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Print this account's contact link (and its QR code).
    ContactLink,
    /// Add a contact from its contact link.
    ContactAdd {
        /// The `tandem://contact?...` link.
        link: String,
        /// The name to save it under (default: the name in the link).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `group ...`.
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a group with contacts (their saved names or account ids).
    Create {
        /// The group's name.
        name: String,
        /// The contacts to add.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Add a contact to a group.
    Add {
        /// The group: its id or its exact name.
        chat: String,
        /// The contact.
        member: String,
    },
    /// Remove a member from a group.
    Remove {
        /// The group: its id or its exact name.
        chat: String,
        /// The member (name or account id).
        member: String,
    },
}

fn request_of(cmd: &Messaging) -> Option<Request> {
    Some(match cmd {
        Messaging::Send {
            chat,
            text,
            reply,
            wait,
        } => Request::Send {
            chat: chat.clone(),
            text: text.clone(),
            reply: reply.clone(),
            wait: *wait,
            id: None,
        },
        Messaging::React { message, emoji } => Request::React {
            message: message.clone(),
            emoji: emoji.clone(),
        },
        Messaging::Edit { message, text } => Request::Edit {
            message: message.clone(),
            text: text.clone(),
        },
        Messaging::Delete { message } => Request::Delete {
            message: message.clone(),
        },
        Messaging::Read { chat } => Request::Read { chat: chat.clone() },
        Messaging::Typing { chat, off } => Request::Typing {
            chat: chat.clone(),
            on: !off,
        },
        Messaging::ContactAdd { link, name } => Request::ContactAdd {
            link: link.clone(),
            name: name.clone(),
        },
        Messaging::Group(GroupCmd::Create { name, members }) => Request::GroupCreate {
            name: name.clone(),
            members: members.clone(),
        },
        Messaging::Group(GroupCmd::Add { chat, member }) => Request::GroupAdd {
            chat: chat.clone(),
            member: member.clone(),
        },
        Messaging::Group(GroupCmd::Remove { chat, member }) => Request::GroupRemove {
            chat: chat.clone(),
            member: member.clone(),
        },
        Messaging::ContactLink => return None,
    })
}

/// Runs a messaging command on `home`.
pub fn run_messaging(home: &Path, cmd: &Messaging, json: bool) -> anyhow::Result<()> {
    if let Messaging::ContactLink = cmd {
        let engine = Engine::open(home)?;
        let link = engine.contact_link()?;
        if json {
            return output::json(&serde_json::json!({ "link": link }));
        }
        let code = tandem_qr::QrCode::new(&link)?;
        output::line(&code.to_terminal())?;
        return output::line(&link);
    }
    let Some(request) = request_of(cmd) else {
        return Ok(());
    };
    let rt = runtime()?;
    if let Some(reply) = rt.block_on(Engine::hand_over(home, &request))? {
        return match reply {
            Reply::Ok(value) => print_value(&value, json),
            Reply::Error { message, .. } => Err(anyhow::anyhow!(message)),
        };
    }
    let engine = Engine::open(home)?;
    let value = match cmd {
        Messaging::Send {
            chat, text, reply, ..
        } => serde_json::to_value(engine.send(chat, text, reply.as_deref())?)?,
        Messaging::React { message, emoji } => serde_json::to_value(engine.react(message, emoji)?)?,
        Messaging::Edit { message, text } => serde_json::to_value(engine.edit(message, text)?)?,
        Messaging::Delete { message } => serde_json::to_value(engine.delete(message)?)?,
        Messaging::Read { chat } => serde_json::to_value(engine.mark_read(chat)?)?,
        Messaging::ContactAdd { link, name } => {
            serde_json::to_value(engine.contact_add(link, name.as_deref())?)?
        }
        Messaging::Group(GroupCmd::Create { name, members }) => {
            serde_json::to_value(engine.group_create(name, members)?)?
        }
        Messaging::Group(GroupCmd::Add { chat, member }) => {
            serde_json::to_value(engine.group_add(chat, member)?)?
        }
        Messaging::Group(GroupCmd::Remove { chat, member }) => {
            serde_json::to_value(engine.group_remove(chat, member)?)?
        }
        Messaging::Typing { .. } => {
            anyhow::bail!(
                "typing indicators are sent by a running session: start `run` on this home first"
            )
        }
        Messaging::ContactLink => return Ok(()),
    };
    let wait = matches!(cmd, Messaging::Send { wait: true, .. });
    let limit = if wait { WAIT_FOR_BROKER } else { SEND_AT_ONCE };
    let sent = rt.block_on(engine.send_queued(limit, &mut |_| {}));
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) if !wait => {
            eprintln!("note: queued; not sent yet ({e}); the next `run` sends it");
            true
        }
        Err(e) => return Err(e.into()),
    };
    if !sent {
        if wait {
            anyhow::bail!(
                "the broker did not acknowledge within {} s; the message stays queued",
                WAIT_FOR_BROKER.as_secs()
            );
        }
        eprintln!(
            "note: queued; not sent yet (the broker did not answer); the next `run` sends it"
        );
    }
    // The message as it is now (status "sent" once the broker took it).
    let value = match (cmd, value.get("id").and_then(|v| v.as_str())) {
        (Messaging::Send { .. }, Some(id)) => serde_json::to_value(engine.message(id)?)?,
        _ => value,
    };
    print_value(&value, json)
}

fn print_value(value: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(value);
    }
    match (value.get("id"), value.get("status"), value.get("text")) {
        (Some(id), status, Some(_)) => output::line(&format!(
            "{} {}",
            id.as_str().unwrap_or_default(),
            status.and_then(|s| s.as_str()).unwrap_or_default()
        )),
        _ => output::line(&value.to_string()),
    }
}

/// `tandem-phone run --bridge-listen ADDR`: [`run`] with the bridge server for bridge-mode
/// desktops on `listen`. When the phone has no bridge URL yet (and `bridge_url` gives none), the
/// address bound becomes it (`ws://ADDR`).
///
/// # Errors
/// As [`run`]; an address that cannot be bound.
pub fn run_bridged(
    engine: &Engine,
    broker: Option<&str>,
    listen: std::net::SocketAddr,
    json: bool,
) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(json);
    let mut on = |e: &Event| reporter.on(e);
    let outcome = runtime()?.block_on(async {
        let stop = StopSignal::install()?;
        let listener = tandem_engine::BridgeListener::bind(listen).await?;
        if engine.bridge_endpoint()?.is_none() {
            let url = format!("ws://{}", listener.local_addr()?);
            let key = engine.set_bridge_url(&url)?;
            eprintln!("Bridge desktops will dial {url} (this phone's bridge key: {key}).");
        }
        tokio::select! {
            result = engine.run_bridged(broker, listener, &mut on) => result.map_err(anyhow::Error::from),
            _ = stop.recv() => Ok(()),
        }
    });
    reporter.finish(outcome)
}

/// `run`: stays connected until a stop signal, printing events (exit 0 on the signal).
pub fn run(engine: &Engine, broker: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(json);
    let mut on = |e: &Event| reporter.on(e);
    let outcome = runtime()?.block_on(async {
        let stop = StopSignal::install()?;
        tokio::select! {
            result = engine.run(broker, &mut on) => result.map_err(anyhow::Error::from),
            _ = stop.recv() => Ok(()),
        }
    });
    reporter.finish(outcome)
}
