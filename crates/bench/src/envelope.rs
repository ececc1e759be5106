//! Envelope benchmark: sealing and opening 300-byte text messages between two devices.
//!
//! Baseline: what sealing costs without sessions, one fresh HPKE Auth exchange per message
//! (X25519 ephemeral + static DH, HKDF-SHA256, ChaCha20-Poly1305; `tandem_crypto::oneshot`).
//! Measured: the real path over an established pairwise session (hash ratchet step,
//! ChaCha20-Poly1305, header codec, device-list check, in-memory replay guard), rekeying every
//! 10 000 messages as the default policy says.
//!
//! Each phase is timed twice: wall clock, and this thread's on-CPU time (Linux
//! `/proc/thread-self/schedstat`), which stays a per-core figure when other processes share the
//! machine. Where the CPU clock is unavailable the `_cpu` lines are omitted.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use tandem_crypto::{
    AccountKey, DeviceCertificate, DeviceDescription, DeviceId, DeviceKeys, DeviceList, OsRng,
    PairwiseSession, RekeyPolicy, oneshot,
};
use tandem_proto::{
    Body, ChatRef, Envelope, Flags, MemoryReplayGuard, MessageId, OpenedBody, SealParams,
    open_envelope, seal_envelope,
};

const PLAINTEXT_LEN: usize = 300;
const NOW_MS: i64 = 1_700_000_000_000;

/// A device of a benchmark account, with the account's one-device list.
struct Device {
    account: AccountKey,
    id: DeviceId,
    keys: DeviceKeys,
    list: DeviceList,
}

fn device(rng: &mut OsRng) -> anyhow::Result<Device> {
    let account = AccountKey::generate(rng);
    let keys = DeviceKeys::generate(rng);
    let cert = DeviceCertificate::issue(
        &account,
        &keys,
        DeviceDescription {
            index: 0,
            keys: keys.public_keys(),
            name: "bench".into(),
            platform: "bench".into(),
            linked_at_ms: NOW_MS,
        },
    )?;
    let list = DeviceList::new(account.public_key(), 1, NOW_MS, vec![cert])?;
    Ok(Device {
        id: DeviceId::primary(account.account_id()),
        account,
        keys,
        list,
    })
}

fn micros_per(total: Duration, count: usize) -> f64 {
    total.as_secs_f64() * 1e6 / count as f64
}

/// This thread's on-CPU time so far, if the kernel reports it.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Wall-clock and on-CPU time of one phase, per operation, in µs.
#[derive(Clone, Copy)]
struct PerOp {
    wall_us: f64,
    cpu_us: Option<f64>,
}

impl PerOp {
    fn plus(self, other: PerOp) -> PerOp {
        PerOp {
            wall_us: self.wall_us + other.wall_us,
            cpu_us: self.cpu_us.zip(other.cpu_us).map(|(a, b)| a + b),
        }
    }

    /// CPU time when known, else wall time: the figure rates are computed from.
    fn best_us(self) -> f64 {
        self.cpu_us.unwrap_or(self.wall_us)
    }
}

/// Runs `phase` (which performs `count` operations) and times it.
fn timed<T>(count: usize, phase: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, PerOp)> {
    let cpu_start = thread_cpu_time();
    let wall_start = Instant::now();
    let value = phase()?;
    let wall = wall_start.elapsed();
    let cpu = cpu_start
        .zip(thread_cpu_time())
        .map(|(start, end)| end.saturating_sub(start));
    Ok((
        value,
        PerOp {
            wall_us: micros_per(wall, count),
            cpu_us: cpu.map(|c| micros_per(c, count)),
        },
    ))
}

/// Prints `name_wall` and (when known) `name_cpu` in µs.
fn write_per_op(out: &mut dyn Write, name: &str, per_op: PerOp) -> anyhow::Result<()> {
    writeln!(out, "{name}_wall: {:.2} µs", per_op.wall_us)?;
    if let Some(cpu) = per_op.cpu_us {
        writeln!(out, "{name}_cpu: {cpu:.2} µs")?;
    }
    Ok(())
}

/// Runs the envelope benchmark and prints one figure per line.
pub fn run(out: &mut dyn Write, quick: bool) -> anyhow::Result<()> {
    let baseline_n = if quick { 200 } else { 3_000 };
    let session_n = if quick { 5_000 } else { 100_000 };
    let mut rng = OsRng::new()?;
    let alice = device(&mut rng)?;
    let bob = device(&mut rng)?;
    let text = "x".repeat(PLAINTEXT_LEN);
    let plaintext = text.as_bytes();

    // Baseline: a fresh HPKE Auth exchange for every message.
    let info = b"tandem/v1 bench one-shot";
    let to = bob.keys.public_keys().x25519;
    let from = alice.keys.public_keys().x25519;
    let (sealed, baseline_seal) = timed(baseline_n, || {
        (0..baseline_n)
            .map(|_| oneshot::seal(&alice.keys, &to, info, b"", plaintext, &mut rng))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::from)
    })?;
    let ((), baseline_open) = timed(baseline_n, || {
        for s in &sealed {
            black_box(oneshot::open(&bob.keys, &from, info, b"", s)?);
        }
        Ok(())
    })?;
    let baseline = baseline_seal.plus(baseline_open);

    // Sessions: alice's phone to bob's phone through the real envelope code.
    let policy = RekeyPolicy::default();
    let mut alice_state = PairwiseSession::new(alice.id, bob.id);
    let mut bob_state = PairwiseSession::new(bob.id, alice.id);
    let mut guard = MemoryReplayGuard::new(session_n);
    let body = Body::Text {
        chat: ChatRef::Direct {
            with: bob.account.account_id(),
        },
        text,
    };
    let bob_keys = bob.keys.public_keys();
    let (envelopes, session_seal) = timed(session_n, || {
        let mut envelopes = Vec::with_capacity(session_n);
        for i in 0..session_n {
            let now_ms = NOW_MS + i64::try_from(i)?;
            let session =
                alice_state.outbound(&alice.keys, &bob_keys, now_ms, &policy, &mut rng)?;
            let params = SealParams {
                message_id: MessageId::new_v7(now_ms, &mut rng)?,
                timestamp_ms: now_ms,
                flags: Flags::NONE,
            };
            envelopes.push(seal_envelope(session, &params, &body)?);
        }
        Ok(envelopes)
    })?;
    let ((), session_open) = timed(session_n, || {
        for bytes in &envelopes {
            let envelope = Envelope::decode(bytes)?;
            let opened = open_envelope(
                &envelope,
                &bob.keys,
                &mut bob_state,
                &alice.list,
                &mut guard,
                NOW_MS,
            )?;
            anyhow::ensure!(
                matches!(opened.body, OpenedBody::Known(Body::Text { .. })),
                "an envelope opened to the wrong body"
            );
            black_box(opened);
        }
        Ok(())
    })?;
    let session = session_seal.plus(session_open);
    let envelope_len = envelopes.first().context("no envelope sealed")?.len();

    writeln!(out, "envelope.message_plaintext: {PLAINTEXT_LEN} bytes")?;
    writeln!(out, "envelope.envelope_size: {envelope_len} bytes")?;
    write_per_op(out, "envelope.baseline_fresh_hpke_auth.seal", baseline_seal)?;
    write_per_op(out, "envelope.baseline_fresh_hpke_auth.open", baseline_open)?;
    writeln!(
        out,
        "envelope.baseline_fresh_hpke_auth.seal_open_rate: {:.0} messages/s per core",
        1e6 / baseline.best_us()
    )?;
    write_per_op(out, "envelope.session.seal", session_seal)?;
    write_per_op(out, "envelope.session.open", session_open)?;
    write_per_op(out, "envelope.session.seal_open", session)?;
    writeln!(
        out,
        "envelope.session.seal_open_rate: {:.0} messages/s per core",
        1e6 / session.best_us()
    )?;
    writeln!(
        out,
        "envelope.session_speedup_over_baseline: {:.1} x",
        baseline.best_us() / session.best_us()
    )?;
    writeln!(
        out,
        "envelope.session.messages_measured: {session_n} messages"
    )?;
    Ok(())
}
