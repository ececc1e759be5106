//! Store benchmarks, each figure beside a baseline measured in the same run, on real files in
//! a temporary directory:
//!
//! - inserts with every index and the FTS5 index, against a bare table holding the same rows,
//!   and with SQLCipher against without (overhead), time-ordered ids against random ones;
//! - search (newest 50 hits) for a common and a rare word, against a `LIKE` scan of the same
//!   store, and whether any search plan sorts all matches;
//! - opening a chat (newest 50, and 50 older than a message in the middle) in a large store
//!   against a 10k-message one.
//!
//! Every line is `name: value unit`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::report::{line, load_average, short};
use rusqlite::{Connection, params};
use tandem_engine::synth;
use tandem_store::{ChatId, Cursor, MessageId, NewMessage, Store, StoreKey};

/// Messages per write transaction in every insert figure.
const BATCH: usize = 5_000;
/// The clock the synthetic histories end at (fixed, so runs are comparable).
const NOW_MS: i64 = 1_760_000_000_000;
/// The store's benchmark key.
const KEY: [u8; 32] = [0x5a; 32];
/// Vocabulary rank of the "common" searched word (in a few percent of messages).
const COMMON_RANK: usize = 56;
/// Vocabulary rank of the "rare" searched word (in about one message in ten thousand).
const RARE_RANK: usize = 8_000;
/// The most common word ("the": in about one message in ten), the worst case of a prefix.
const TOP_RANK: usize = 0;

/// Sizes of one run.
struct Sizes {
    insert: usize,
    large: usize,
    small: usize,
    chats: usize,
    query_runs: usize,
    like_runs: usize,
}

/// Runs the store benchmarks and prints one figure per line.
///
/// # Errors
/// When the temporary directory, a store or a query fails.
pub fn run(out: &mut dyn Write, quick: bool) -> anyhow::Result<()> {
    let sizes = if quick {
        Sizes {
            insert: 50_000,
            large: 100_000,
            small: 10_000,
            chats: 40,
            query_runs: 100,
            like_runs: 10,
        }
    } else {
        Sizes {
            insert: 200_000,
            large: 1_000_000,
            small: 10_000,
            chats: 60,
            query_runs: 400,
            like_runs: 20,
        }
    };
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    load_average(out, "store", "start")?;
    inserts(out, dir.path(), &sizes)?;
    let large = build(dir.path(), "large", sizes.large, sizes.chats, out)?;
    search(out, &large, &sizes)?;
    let small = paging(out, dir.path(), &large, &sizes)?;
    engine_api(out, &[(sizes.large, &large), (sizes.small, &small)], &sizes)?;
    load_average(out, "store", "end")?;
    Ok(())
}

/// How many times longer `a` took than `b`, for a figure line.
fn ratio(a: &Duration, b: &Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

/// "yes" when either plan (without and with the optional clause) sorts in a temporary B-tree.
fn sorts_all_matches(
    plan: impl Fn(bool) -> Result<Vec<String>, tandem_store::Error>,
) -> anyhow::Result<&'static str> {
    for with in [false, true] {
        if plan(with)?
            .iter()
            .any(|step| step.contains("USE TEMP B-TREE"))
        {
            return Ok("yes");
        }
    }
    Ok("no")
}

fn key() -> StoreKey {
    StoreKey::from_bytes(KEY)
}

fn key_hex() -> String {
    KEY.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n"
}

fn history(seed: u64, chats: usize, messages: usize) -> synth::History {
    synth::generate(seed, chats, messages, NOW_MS)
}

fn rate(count: usize, took: Duration) -> u64 {
    (count as f64 / took.as_secs_f64().max(1e-9)) as u64
}

/// Wall-clock and on-CPU time of a piece of work on this thread.
#[derive(Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Option<Duration>,
}

/// Time this thread has spent on a CPU (Linux `schedstat`, nanoseconds), if the kernel says.
/// On a machine shared with other work, wall-clock rates drop while this one does not.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    (ns > 0).then(|| Duration::from_nanos(ns))
}

fn measure<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Spent)> {
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    let value = f()?;
    let wall = started.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok((value, Spent { wall, cpu }))
}

/// Prints `<name>` (wall-clock rate) and `<name>_per_cpu_second` (the rate per second this
/// thread spent on a CPU); returns the wall-clock rate.
fn rate_lines(out: &mut dyn Write, name: &str, count: usize, spent: Spent) -> anyhow::Result<u64> {
    let wall = rate(count, spent.wall);
    line(out, name, wall, "msg/s")?;
    if let Some(cpu) = spent.cpu {
        line(
            out,
            &format!("{name}_per_cpu_second"),
            rate(count, cpu),
            "msg/s",
        )?;
    }
    Ok(wall)
}

/// Inserts `messages` into `store` in batches (the chats first); returns the time spent in
/// the writes only.
fn insert_all(
    store: &Store,
    history: &synth::History,
    messages: &[NewMessage],
) -> anyhow::Result<Spent> {
    store.write(|w| history.chats.iter().try_for_each(|c| w.upsert_chat(c)))?;
    let ((), spent) = measure(|| {
        for batch in messages.chunks(BATCH) {
            let added = store.write(|w| w.insert_messages(batch))?;
            anyhow::ensure!(
                added == batch.len(),
                "only {added} of {} messages were added",
                batch.len()
            );
        }
        Ok(())
    })?;
    Ok(spent)
}

fn inserts(out: &mut dyn Write, dir: &Path, sizes: &Sizes) -> anyhow::Result<()> {
    let h = history(1, sizes.chats, sizes.insert);
    let messages: Vec<NewMessage> = h.messages.clone().collect();
    line(out, "store.insert.rows", messages.len(), "messages")?;
    line(out, "store.insert.batch", BATCH, "messages")?;

    let (_, bare) = measure(|| bare_insert(&dir.join("bare.db"), &messages))?;
    let bare_rate = rate_lines(out, "store.insert.bare_table", messages.len(), bare)?;

    let encrypted = Store::open(&dir.join("insert-encrypted.db"), &key())?;
    let enc = insert_all(&encrypted, &h, &messages)?;
    let enc_rate = rate_lines(out, "store.insert.full_encrypted", messages.len(), enc)?;
    let vs_bare = enc_rate as f64 / bare_rate.max(1) as f64;
    line(
        out,
        "store.insert.full_vs_bare",
        format!("{vs_bare:.3}"),
        "x",
    )?;
    drop(encrypted);

    let plain = Store::open_plain(&dir.join("insert-plain.db"))?;
    let plain_spent = insert_all(&plain, &h, &messages)?;
    let plain_rate = rate_lines(out, "store.insert.full_plain", messages.len(), plain_spent)?;
    let overhead = (plain_rate as f64 / enc_rate.max(1) as f64 - 1.0) * 100.0;
    line(
        out,
        "store.insert.sqlcipher_overhead",
        format!("{overhead:.1}"),
        "%",
    )?;
    if let (Some(enc_cpu), Some(plain_cpu)) = (enc.cpu, plain_spent.cpu) {
        let overhead = (enc_cpu.as_secs_f64() / plain_cpu.as_secs_f64().max(1e-9) - 1.0) * 100.0;
        line(
            out,
            "store.insert.sqlcipher_overhead_cpu",
            format!("{overhead:.1}"),
            "%",
        )?;
    }
    drop(plain);

    // The same rows with random (not time-ordered) ids.
    let mut rng = 0x1234_5678_9abc_def0_u64;
    let random: Vec<NewMessage> = messages
        .iter()
        .map(|m| {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&splitmix(&mut rng).to_le_bytes());
            bytes[8..].copy_from_slice(&splitmix(&mut rng).to_le_bytes());
            NewMessage {
                id: MessageId::from(bytes),
                reply_to: None,
                ..m.clone()
            }
        })
        .collect();
    let random_store = Store::open(&dir.join("insert-random.db"), &key())?;
    let spent = insert_all(&random_store, &h, &random)?;
    rate_lines(
        out,
        "store.insert.full_encrypted_random_ids",
        random.len(),
        spent,
    )?;
    Ok(())
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The baseline: the same rows into a table with no index, no FTS, no encryption.
fn bare_insert(path: &Path, messages: &[NewMessage]) -> anyhow::Result<Duration> {
    let mut conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE bare (id BLOB NOT NULL, chat BLOB NOT NULL, sender_account BLOB, sender_device INTEGER, \
         sender_name TEXT NOT NULL, from_me INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, \
         text TEXT NOT NULL, media_name TEXT, reply_to BLOB, edited_at INTEGER, deleted INTEGER NOT NULL, \
         status INTEGER NOT NULL) STRICT",
    )?;
    let started = Instant::now();
    for batch in messages.chunks(BATCH) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO bare (id, chat, sender_account, sender_device, sender_name, from_me, ts, kind, text, \
                 media_name, reply_to, edited_at, deleted, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for m in batch {
                stmt.execute(params![
                    m.id.as_bytes(),
                    m.chat.as_bytes(),
                    m.sender.account,
                    m.sender.device,
                    m.sender.name,
                    m.from_me,
                    m.ts,
                    m.kind.as_str(),
                    m.text,
                    m.media_name,
                    m.reply_to.map(|r| *r.as_bytes()),
                    m.edited_at,
                    m.deleted,
                    m.status.code(),
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(started.elapsed())
}

/// Builds an encrypted store of `count` messages, streaming the generator (nothing is held in
/// memory beyond a batch), and reports the build rate.
fn build(
    dir: &Path,
    name: &str,
    count: usize,
    chats: usize,
    out: &mut dyn Write,
) -> anyhow::Result<Store> {
    // Laid out as a device home (db + key file), so the engine can open it too.
    let home = dir.join(name);
    std::fs::create_dir_all(&home).context("creating a store home")?;
    std::fs::write(home.join(tandem_store::KEY_FILE), key_hex()).context("writing the key file")?;
    let store = Store::open(&home.join(tandem_store::DB_FILE), &key())?;
    let h = history(2, chats, count);
    store.write(|w| h.chats.iter().try_for_each(|c| w.upsert_chat(c)))?;
    let mut messages = h.messages;
    let mut spent = Spent {
        wall: Duration::ZERO,
        cpu: Some(Duration::ZERO),
    };
    loop {
        let batch: Vec<NewMessage> = messages.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let (_, one) = measure(|| Ok(store.write(|w| w.insert_messages(&batch))?))?;
        spent.wall += one.wall;
        spent.cpu = spent.cpu.zip(one.cpu).map(|(a, b)| a + b);
    }
    store.checkpoint()?;
    let counted = store.counts()?.messages;
    anyhow::ensure!(
        counted == count as u64,
        "store holds {counted} messages, expected {count}"
    );
    rate_lines(
        out,
        &format!("store.build.{}_messages", short(count)),
        count,
        spent,
    )?;
    let size = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    line(
        out,
        &format!("store.build.{}_file_size", short(count)),
        size / (1024 * 1024),
        "MiB",
    )?;
    Ok(store)
}

/// The 95th percentile of `runs` timings of `f` (after a short warm-up).
fn p95(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    for _ in 0..runs.min(5) {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let at = (runs * 95).div_ceil(100).saturating_sub(1);
    times.get(at).copied().context("no timings")
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// A second connection to the store's file, for the LIKE baseline and counts.
fn raw(store: &Store) -> anyhow::Result<Connection> {
    let conn = Connection::open(store.path())?;
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!(
        "PRAGMA cipher_log_level = NONE; PRAGMA key = \"x'{hex}'\";"
    ))?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    Ok(conn)
}

fn search(out: &mut dyn Write, store: &Store, sizes: &Sizes) -> anyhow::Result<()> {
    let conn = raw(store)?;
    let messages = store.counts()?.messages;
    line(out, "store.search.messages", messages, "messages")?;
    // The LIKE baseline walks the time-ordered rowids newest first and stops at 50 hits: the
    // best a scan can do (it finds a common word among the newest rows at once).
    let like_newest = |word: &str| -> anyhow::Result<usize> {
        let mut stmt = conn.prepare_cached(
            "SELECT m.id, m.text, c.name FROM messages m JOIN chats c ON c.id = m.chat \
             WHERE m.text LIKE ?1 ORDER BY m.rowid DESC LIMIT 50",
        )?;
        let rows = stmt.query_map([format!("%{word}%")], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.count())
    };
    // The scan as a schema without time-ordered rowids would have to write it: every row read,
    // the matches sorted by timestamp.
    let like_by_ts = |word: &str| -> anyhow::Result<usize> {
        let mut stmt = conn.prepare_cached(
            "SELECT m.id, m.text, c.name FROM messages m JOIN chats c ON c.id = m.chat \
             WHERE m.text LIKE ?1 ORDER BY m.ts DESC LIMIT 50",
        )?;
        let rows = stmt.query_map([format!("%{word}%")], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.count())
    };
    for (label, query) in [
        ("common", synth::word_by_rank(COMMON_RANK)),
        ("rare", synth::word_by_rank(RARE_RANK)),
        ("most_common", synth::word_by_rank(TOP_RANK)),
    ] {
        let matches: i64 = conn.query_row(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
            [format!("text : (\"{query}\" *)")],
            |r| r.get(0),
        )?;
        line(
            out,
            &format!("store.search.{label}_word_matches"),
            matches,
            &format!("messages (\"{query}\")"),
        )?;
        let hits = store.search(&query, None, 50)?;
        anyhow::ensure!(!hits.is_empty(), "no hits for {query:?}");
        anyhow::ensure!(
            hits.windows(2)
                .all(|w| w.first().map(|a| a.message.ts) >= w.get(1).map(|b| b.message.ts)),
            "hits for {query:?} are not newest first"
        );
        let fts = p95(sizes.query_runs, || {
            store.search(&query, None, 50)?;
            Ok(())
        })?;
        line(out, &format!("store.search.{label}_p95"), ms(fts), "ms")?;
        let like = p95(sizes.like_runs, || {
            like_newest(&query)?;
            Ok(())
        })?;
        line(
            out,
            &format!("store.search.{label}_like_scan_p95"),
            ms(like),
            "ms",
        )?;
        let speedup = like.as_secs_f64() / fts.as_secs_f64().max(1e-9);
        let name = format!("store.search.{label}_speedup_vs_like");
        line(out, &name, format!("{speedup:.2}"), "x")?;
        if label == "common" {
            let by_ts = p95(sizes.like_runs, || {
                like_by_ts(&query)?;
                Ok(())
            })?;
            line(
                out,
                "store.search.common_like_scan_by_ts_p95",
                ms(by_ts),
                "ms",
            )?;
            let speedup = by_ts.as_secs_f64() / fts.as_secs_f64().max(1e-9);
            let name = "store.search.common_speedup_vs_like_by_ts";
            line(out, name, format!("{speedup:.1}"), "x")?;
        }
    }
    // Search-as-you-type: a two-letter prefix matches many distinct words.
    let prefix = p95(sizes.query_runs, || {
        store.search("to", None, 50)?;
        Ok(())
    })?;
    line(out, "store.search.two_letter_prefix_p95", ms(prefix), "ms")?;
    let chats = store.chats()?;
    let biggest = chats
        .iter()
        .max_by_key(|c| c.message_count)
        .context("no chats")?;
    let smallest = chats
        .iter()
        .min_by_key(|c| c.message_count)
        .context("no chats")?;
    let common = synth::word_by_rank(COMMON_RANK);
    for (label, chat) in [("biggest", biggest), ("smallest", smallest)] {
        let in_chat = p95(sizes.query_runs, || {
            store.search(&common, Some(chat.id), 50)?;
            Ok(())
        })?;
        line(
            out,
            &format!("store.search.common_in_{label}_chat_p95"),
            ms(in_chat),
            &format!("ms ({} messages in the chat)", chat.message_count),
        )?;
    }
    let sorts = sorts_all_matches(|with| store.explain_search(with))?;
    line(out, "store.search.plan_sorts_all_matches", sorts, "")?;
    Ok(())
}

/// The chat with the most messages and the (ts, id) of its middle message.
fn middle_of_biggest(store: &Store) -> anyhow::Result<(ChatId, u64, Cursor)> {
    let chat = store
        .chats()?
        .into_iter()
        .max_by_key(|c| c.message_count)
        .context("no chats")?;
    let conn = raw(store)?;
    let (ts, id): (i64, Vec<u8>) = conn.query_row(
        "SELECT ts, id FROM messages WHERE chat = ?1 ORDER BY ts, id LIMIT 1 OFFSET ?2",
        params![chat.id.as_bytes(), i64::try_from(chat.message_count / 2)?],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let id: [u8; 16] = id
        .as_slice()
        .try_into()
        .context("a message id is not 16 bytes")?;
    Ok((
        chat.id,
        chat.message_count,
        Cursor::Before {
            ts,
            id: MessageId::from(id),
        },
    ))
}

fn paging(out: &mut dyn Write, dir: &Path, large: &Store, sizes: &Sizes) -> anyhow::Result<Store> {
    let small = build(dir, "small", sizes.small, 10, out)?;
    let mut results = Vec::new();
    for (label, store) in [(short(sizes.large), large), (short(sizes.small), &small)] {
        let (chat, count, middle) = middle_of_biggest(store)?;
        line(
            out,
            &format!("store.page.{label}_chat_messages"),
            count,
            "messages",
        )?;
        let newest = p95(sizes.query_runs, || {
            anyhow::ensure!(
                store.page(chat, Cursor::Newest, 50)?.len() == 50,
                "short page"
            );
            Ok(())
        })?;
        let older = p95(sizes.query_runs, || {
            anyhow::ensure!(store.page(chat, middle, 50)?.len() == 50, "short page");
            Ok(())
        })?;
        line(
            out,
            &format!("store.page.{label}_newest_p95"),
            ms(newest),
            "ms",
        )?;
        line(
            out,
            &format!("store.page.{label}_middle_p95"),
            ms(older),
            "ms",
        )?;
        results.push((newest, older));
    }
    if let [(big_newest, big_middle), (small_newest, small_middle)] = results.as_slice() {
        line(
            out,
            "store.page.newest_large_vs_small",
            ratio(big_newest, small_newest),
            "x",
        )?;
        line(
            out,
            "store.page.middle_large_vs_small",
            ratio(big_middle, small_middle),
            "x",
        )?;
    }
    let sorts = sorts_all_matches(|with| large.explain_page(with))?;
    line(out, "store.page.plan_sorts", sorts, "")?;
    Ok(small)
}

/// The same reads through the engine's API (what `tandem history`/`search` and the app call):
/// chat lookup by id, keyset page or FTS query, and the views, on each store opened by the engine.
fn engine_api(
    out: &mut dyn Write,
    stores: &[(usize, &Store)],
    sizes: &Sizes,
) -> anyhow::Result<()> {
    let common = synth::word_by_rank(COMMON_RANK);
    let rare = synth::word_by_rank(RARE_RANK);
    let mut newest_p95 = Vec::new();
    for (count, store) in stores {
        let label = short(*count);
        let (chat, _, middle) = middle_of_biggest(store)?;
        let home = store.path().parent().context("a store without a folder")?;
        let engine = tandem_engine::Engine::open_with(home, tandem_engine::KeychainUse::Off)?;
        let chat = chat.0.hyphenated().to_string();
        let Cursor::Before { id, .. } = middle else {
            anyhow::bail!("the middle cursor is not a Before cursor");
        };
        let middle = id.0.hyphenated().to_string();
        let newest = p95(sizes.query_runs, || {
            anyhow::ensure!(engine.history(&chat, 50, None)?.len() == 50, "short page");
            Ok(())
        })?;
        let older = p95(sizes.query_runs, || {
            anyhow::ensure!(
                engine.history(&chat, 50, Some(&middle))?.len() == 50,
                "short page"
            );
            Ok(())
        })?;
        line(
            out,
            &format!("engine.history.{label}_newest_p95"),
            ms(newest),
            "ms",
        )?;
        line(
            out,
            &format!("engine.history.{label}_middle_p95"),
            ms(older),
            "ms",
        )?;
        newest_p95.push((newest, older));
        for (name, word) in [("common", &common), ("rare", &rare)] {
            let took = p95(sizes.query_runs, || {
                engine.search(word, None, 50)?;
                Ok(())
            })?;
            line(
                out,
                &format!("engine.search.{label}_{name}_p95"),
                ms(took),
                &format!("ms (\"{word}\")"),
            )?;
        }
    }
    if let [(big_newest, big_middle), (small_newest, small_middle), ..] = newest_p95.as_slice() {
        line(
            out,
            "engine.history.newest_large_vs_small",
            ratio(big_newest, small_newest),
            "x",
        )?;
        line(
            out,
            "engine.history.middle_large_vs_small",
            ratio(big_middle, small_middle),
            "x",
        )?;
    }
    Ok(())
}
