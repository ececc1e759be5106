//! Deterministic synthetic chat history for demos, tests and benchmarks: direct chats and
//! groups with member names, message texts whose lengths run from one-word replies to long
//! paragraphs, drawn from a vocabulary where a few words are common and most are rare, with
//! accents, Cyrillic, CJK and emoji; timestamps spread over several years in bursts of
//! conversation; time-ordered (UUID v7 layout) ids; some media, system lines, replies, edits
//! and deleted messages. The same seed always gives the same history.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tandem_engine::synth;
//! use tandem_store::{Store, StoreKey};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("demo.db"), &StoreKey::from_bytes([7; 32]))?;
//! let history = synth::generate(7, 10, 2_000, 1_760_000_000_000);
//! store.write(|w| history.chats.iter().try_for_each(|c| w.upsert_chat(c)))?;
//! let messages: Vec<_> = history.messages.collect();
//! for batch in messages.chunks(500) {
//!     store.write(|w| w.insert_messages(batch))?;
//! }
//! assert_eq!(store.counts()?.messages, 2_000);
//! # Ok(())
//! # }
//! ```

use tandem_store::{
    ChatId, ChatKind, Member, MessageId, MessageKind, MessageStatus, NewChat, NewMessage, Sender,
};
use uuid::{Builder, Uuid};

/// How far back the generated history reaches (about four years).
pub const SPAN_MS: i64 = 4 * 365 * 24 * 3600 * 1000;

/// A generated history: its chats (create them first) and its messages, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    /// The account that owns the history ("me").
    pub self_account: Vec<u8>,
    /// Every chat, with its members.
    pub chats: Vec<NewChat>,
    /// The messages, lazily generated in time order.
    pub messages: Messages,
}

/// Generates a history of `chats` chats (at least one) and exactly `messages` messages ending
/// at `now_ms`. Deterministic: the same arguments give the same history on every platform.
#[must_use]
pub fn generate(seed: u64, chats: usize, messages: usize, now_ms: i64) -> History {
    let mut rng = Rng::new(seed);
    let self_account = rng.bytes16().to_vec();
    let chat_count = chats.max(1);
    let mut states = Vec::with_capacity(chat_count);
    let mut new_chats = Vec::with_capacity(chat_count);
    let start = now_ms.saturating_sub(SPAN_MS);
    for index in 0..chat_count {
        let (chat, state) = make_chat(&mut rng, index, &self_account, start);
        new_chats.push(chat);
        states.push(state);
    }
    let chat_weights = zipf_cumulative(chat_count, 1.0);
    History {
        self_account,
        chats: new_chats,
        messages: Messages {
            rng,
            vocabulary: Vocabulary::new(),
            chats: states,
            chat_weights,
            total: messages,
            emitted: 0,
            start,
            span: now_ms.saturating_sub(start).max(1),
            last_ts: start,
            burst_left: 0,
            burst_chat: 0,
        },
    }
}

/// The word of the vocabulary at `rank` (0 is the most common); benchmarks use it to search
/// for a common and a rare word. Ranks past the end wrap around.
#[must_use]
pub fn word_by_rank(rank: usize) -> String {
    Vocabulary::new().word(rank).to_owned()
}

/// How many distinct words the vocabulary holds.
#[must_use]
pub fn vocabulary_size() -> usize {
    Vocabulary::new().words.len()
}

/// What the generator remembers about a chat while emitting its messages.
#[derive(Debug, Clone)]
struct ChatState {
    id: ChatId,
    /// Authors other than me: (account, name).
    others: Vec<(Option<Vec<u8>>, String)>,
    /// Chance that a message in this chat is mine.
    mine: f64,
    /// Chance of a word from another script (Cyrillic, CJK) in this chat.
    foreign: f64,
    /// The last few message ids, for replies.
    recent: Vec<MessageId>,
    is_group: bool,
    media_counter: u32,
}

/// The generated messages, oldest first (an iterator; see [`generate`]).
#[derive(Debug, Clone)]
pub struct Messages {
    rng: Rng,
    vocabulary: Vocabulary,
    chats: Vec<ChatState>,
    chat_weights: Vec<f64>,
    total: usize,
    emitted: usize,
    start: i64,
    span: i64,
    last_ts: i64,
    burst_left: u32,
    burst_chat: usize,
}

impl Iterator for Messages {
    type Item = NewMessage;

    fn next(&mut self) -> Option<NewMessage> {
        if self.emitted >= self.total {
            return None;
        }
        let ts = self.next_timestamp();
        let Self {
            rng,
            vocabulary,
            chats,
            burst_chat,
            ..
        } = self;
        let chat = chats.get_mut(*burst_chat)?;
        let message = make_message(rng, vocabulary, chat, ts);
        self.emitted += 1;
        Some(message)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.emitted;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Messages {}

impl Messages {
    /// Conversations come in bursts: a few to a few dozen messages in one chat, seconds to
    /// minutes apart; bursts start at times spread evenly over the span, so the history covers
    /// all of it whatever the message count.
    fn next_timestamp(&mut self) -> i64 {
        let total = i64::try_from(self.total.max(1)).unwrap_or(i64::MAX);
        let done = i64::try_from(self.emitted).unwrap_or(i64::MAX);
        let offset = i128::from(self.span) * i128::from(done) / i128::from(total);
        let base = self.start + i64::try_from(offset).unwrap_or(0);
        if self.burst_left == 0 {
            self.burst_left = 1 + self.rng.geometric(0.12);
            self.burst_chat = self.rng.weighted(&self.chat_weights);
            let jitter = self.span / total;
            self.last_ts = self.last_ts.max(base + self.rng.below_i64(jitter.max(1)));
        } else {
            // Replies: mostly seconds, sometimes minutes.
            let gap = if self.rng.chance(0.8) {
                2_000 + self.rng.below_i64(60_000)
            } else {
                60_000 + self.rng.below_i64(1_800_000)
            };
            self.last_ts = self.last_ts.max(base) + gap;
        }
        self.burst_left -= 1;
        self.last_ts
    }
}

fn make_message(
    rng: &mut Rng,
    vocabulary: &Vocabulary,
    chat: &mut ChatState,
    ts: i64,
) -> NewMessage {
    let id = MessageId(v7_id(ts, rng));
    let from_me = chat.others.is_empty() || rng.chance(chat.mine);
    let sender = if from_me {
        Sender {
            account: None,
            device: Some(0),
            name: "Me".to_owned(),
        }
    } else {
        match chat.others.get(rng.below(chat.others.len())) {
            Some((account, name)) => Sender {
                account: account.clone(),
                device: account.as_ref().map(|_| 0),
                name: name.clone(),
            },
            None => Sender::default(),
        }
    };
    let mut message = NewMessage {
        id,
        chat: chat.id,
        sender,
        from_me,
        ts,
        kind: MessageKind::Text,
        text: String::new(),
        media_name: None,
        reply_to: None,
        edited_at: None,
        deleted: false,
        status: if from_me {
            my_status(rng)
        } else {
            MessageStatus::Sent
        },
    };
    let roll = rng.next_f64();
    if roll < 0.005 && chat.is_group {
        message.kind = MessageKind::System;
        message.text = system_line(rng, chat);
        message.from_me = false;
        message.sender = Sender::default();
        message.status = MessageStatus::Sent;
    } else if roll < 0.008 {
        message.kind = MessageKind::Deleted;
        message.deleted = true;
    } else if roll < 0.045 {
        message.kind = MessageKind::Media;
        chat.media_counter += 1;
        message.media_name = Some(media_name(rng, chat.media_counter, ts));
        if rng.chance(0.4) {
            let words = 1 + rng.below(8);
            message.text = text(rng, vocabulary, chat.foreign, words);
        }
    } else {
        let words = text_length(rng);
        message.text = text(rng, vocabulary, chat.foreign, words);
        if rng.chance(0.06) {
            message.reply_to = chat.recent.get(rng.below(chat.recent.len())).copied();
        }
        if rng.chance(0.01) {
            message.edited_at = Some(ts + 5_000 + rng.below_i64(600_000));
        }
    }
    if chat.recent.len() >= 8 {
        chat.recent.remove(0);
    }
    chat.recent.push(id);
    message
}

fn my_status(rng: &mut Rng) -> MessageStatus {
    match rng.below(20) {
        0 => MessageStatus::Sent,
        1..=3 => MessageStatus::Delivered,
        _ => MessageStatus::Read,
    }
}

/// Word count: many short replies, fewer sentences, a few long paragraphs.
fn text_length(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=39 => 1 + rng.below(4),
        40..=74 => 5 + rng.below(11),
        75..=94 => 16 + rng.below(35),
        _ => 50 + rng.below(150),
    }
}

fn text(rng: &mut Rng, vocabulary: &Vocabulary, foreign: f64, words: usize) -> String {
    let mut out = String::with_capacity(words * 7);
    let mut sentence_start = true;
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        let word = if rng.chance(foreign) {
            pick(rng, FOREIGN_WORDS)
        } else {
            let rank = rng.weighted(&vocabulary.cumulative);
            vocabulary.word(rank)
        };
        if sentence_start {
            capitalize_into(&mut out, word);
        } else {
            out.push_str(word);
        }
        sentence_start = false;
        if i + 1 < words && rng.chance(0.08) {
            out.push_str(pick(rng, &[",", ",", ".", "!", "?", ";", " -"]));
            sentence_start = out.ends_with(['.', '!', '?']);
        }
    }
    if words > 3 {
        out.push_str(pick(rng, &[".", ".", ".", "!", "?", "", "..."]));
    }
    if rng.chance(0.07) {
        out.push(' ');
        out.push_str(pick(rng, EMOJI));
    }
    out
}

fn system_line(rng: &mut Rng, chat: &ChatState) -> String {
    let who = chat
        .others
        .get(rng.below(chat.others.len()))
        .map_or("Someone", |(_, n)| n.as_str());
    match rng.below(4) {
        0 => format!("{who} joined using this group's invite link"),
        1 => format!("{who} left"),
        2 => format!("{who} changed the group description"),
        _ => "Messages and calls are end-to-end encrypted.".to_owned(),
    }
}

fn media_name(rng: &mut Rng, counter: u32, ts: i64) -> String {
    let day = ts / 86_400_000;
    match rng.below(10) {
        0..=5 => format!("IMG-{day}-WA{counter:04}.jpg"),
        6 => format!("VID-{day}-WA{counter:04}.mp4"),
        7 | 8 => format!("PTT-{day}-WA{counter:04}.opus"),
        _ => format!("DOC-{day}-WA{counter:04}.pdf"),
    }
}

fn make_chat(rng: &mut Rng, index: usize, me: &[u8], start: i64) -> (NewChat, ChatState) {
    let id = ChatId(Builder::from_random_bytes(rng.bytes16()).into_uuid());
    let is_group = index % 10 >= 7;
    // Some chats come from imported exports: their authors have names but no accounts.
    let imported = rng.chance(0.2);
    let person = |rng: &mut Rng| {
        let name = format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES));
        let account = (!imported).then(|| rng.bytes16().to_vec());
        (account, name)
    };
    let others: Vec<(Option<Vec<u8>>, String)> = if is_group {
        (0..2 + rng.geometric(0.15).min(40))
            .map(|_| person(rng))
            .collect()
    } else {
        vec![person(rng)]
    };
    let name = if is_group {
        format!("{} {}", pick(rng, GROUP_ADJECTIVES), pick(rng, GROUP_NOUNS))
    } else {
        others.first().map(|(_, n)| n.clone()).unwrap_or_default()
    };
    let mut members = vec![Member {
        account: Some(me.to_vec()),
        name: "Me".to_owned(),
    }];
    members.extend(others.iter().map(|(account, name)| Member {
        account: account.clone(),
        name: name.clone(),
    }));
    let foreign = match rng.below(10) {
        0 => 0.5,
        1 => 0.1,
        _ => 0.01,
    };
    let chat = NewChat {
        id,
        kind: if is_group {
            ChatKind::Group
        } else {
            ChatKind::Direct
        },
        name,
        peer_account: if is_group {
            None
        } else {
            others.first().and_then(|(a, _)| a.clone())
        },
        created_at: start,
        members,
    };
    let mine = if is_group {
        1.0 / (others.len() as f64 + 1.0)
    } else {
        0.45
    };
    let state = ChatState {
        id,
        others,
        mine,
        foreign,
        recent: Vec::new(),
        is_group,
        media_counter: 0,
    };
    (chat, state)
}

/// A UUID with the v7 layout: 48-bit millisecond timestamp, then seeded random bits.
fn v7_id(ts: i64, rng: &mut Rng) -> Uuid {
    let mut random = [0u8; 10];
    let a = rng.next_u64().to_le_bytes();
    let b = rng.next_u64().to_le_bytes();
    for (dst, src) in random.iter_mut().zip(a.iter().chain(b.iter())) {
        *dst = *src;
    }
    Builder::from_unix_timestamp_millis(u64::try_from(ts.max(0)).unwrap_or(0), &random).into_uuid()
}

fn capitalize_into(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// A uniformly chosen item of a constant word list ("" for an empty list).
fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items.get(rng.below(items.len())).copied().unwrap_or("")
}

/// Distinct words in the vocabulary.
const VOCABULARY_SIZE: usize = 20_000;

/// The vocabulary: common words first, then many rare generated ones, with Zipf weights.
#[derive(Debug, Clone)]
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Self {
        let mut words: Vec<String> = COMMON_WORDS.iter().map(|w| (*w).to_owned()).collect();
        words.extend(ACCENTED_WORDS.iter().map(|w| (*w).to_owned()));
        // Rare words: distinct syllable combinations, generated with a fixed seed.
        let mut seen: std::collections::HashSet<String> =
            words.iter().map(|w| w.to_lowercase()).collect();
        let mut rng = Rng::new(0x5eed_0f7a_4de4);
        while words.len() < VOCABULARY_SIZE {
            let syllables = 2 + rng.below(3);
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(pick(&mut rng, SYLLABLES));
            }
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let cumulative = zipf_cumulative(words.len(), 1.07);
        Self { words, cumulative }
    }

    fn word(&self, rank: usize) -> &str {
        let len = self.words.len().max(1);
        self.words.get(rank % len).map_or("", String::as_str)
    }
}

/// Cumulative Zipf weights `1 / rank^s`, normalised to end at 1.
fn zipf_cumulative(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out: Vec<f64> = (1..=n.max(1))
        .map(|rank| {
            acc += 1.0 / (rank as f64).powf(s);
            acc
        })
        .collect();
    for v in &mut out {
        *v /= acc;
    }
    out
}

/// SplitMix64: tiny, fast, and its output is fixed forever (no dependency's version can change
/// the generated history).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x6a09_e667_f3bc_c908)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        let wide = u128::from(self.next_u64()) * n as u128;
        usize::try_from(wide >> 64).unwrap_or(0)
    }

    fn below_i64(&mut self, n: i64) -> i64 {
        let n = u64::try_from(n.max(0)).unwrap_or(0);
        let wide = (u128::from(self.next_u64()) * u128::from(n)) >> 64;
        i64::try_from(wide).unwrap_or(0)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Number of failures before a success of probability `p` (capped at 1000).
    fn geometric(&mut self, p: f64) -> u32 {
        let mut n = 0;
        while n < 1000 && !self.chance(p) {
            n += 1;
        }
        n
    }

    /// An index drawn with the weights whose running sums are `cumulative`.
    fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let x = self.next_f64();
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len().saturating_sub(1))
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        for (dst, src) in out.iter_mut().zip(a.iter().chain(b.iter())) {
            *dst = *src;
        }
        out
    }
}

const COMMON_WORDS: &[&str] = &[
    "the",
    "i",
    "you",
    "to",
    "a",
    "and",
    "it",
    "is",
    "that",
    "of",
    "in",
    "ok",
    "for",
    "me",
    "we",
    "on",
    "have",
    "just",
    "be",
    "so",
    "what",
    "but",
    "not",
    "my",
    "do",
    "are",
    "at",
    "yes",
    "with",
    "this",
    "no",
    "can",
    "was",
    "get",
    "go",
    "will",
    "if",
    "know",
    "now",
    "see",
    "time",
    "good",
    "think",
    "how",
    "up",
    "there",
    "all",
    "out",
    "like",
    "going",
    "tomorrow",
    "today",
    "thanks",
    "when",
    "one",
    "then",
    "home",
    "back",
    "where",
    "sure",
    "right",
    "too",
    "want",
    "come",
    "work",
    "still",
    "here",
    "about",
    "later",
    "yeah",
    "well",
    "haha",
    "need",
    "did",
    "why",
    "tonight",
    "love",
    "great",
    "send",
    "call",
    "maybe",
    "could",
    "would",
    "should",
    "let",
    "got",
    "really",
    "day",
    "night",
    "morning",
    "week",
    "weekend",
    "dinner",
    "lunch",
    "coffee",
    "meeting",
    "train",
    "car",
    "bus",
    "late",
    "soon",
    "photo",
    "video",
    "message",
    "phone",
    "ready",
    "done",
    "nice",
    "cool",
    "sorry",
    "please",
    "happy",
    "birthday",
    "party",
    "school",
    "kids",
    "mum",
    "dad",
    "house",
    "weather",
    "rain",
    "sun",
    "beach",
    "city",
    "station",
    "airport",
    "flight",
    "ticket",
    "hotel",
    "booking",
    "price",
    "money",
    "pay",
    "shop",
    "buy",
    "food",
    "pizza",
    "beer",
    "wine",
    "water",
    "bread",
    "cheese",
    "market",
    "garden",
    "dog",
    "cat",
    "walk",
    "run",
    "game",
    "match",
    "team",
    "score",
    "movie",
    "book",
    "music",
    "concert",
    "song",
    "news",
    "problem",
    "question",
    "answer",
    "idea",
    "plan",
    "project",
    "office",
    "boss",
    "email",
    "computer",
    "laptop",
    "update",
    "bug",
    "release",
    "deploy",
    "server",
    "window",
    "door",
    "key",
    "keys",
    "bag",
    "jacket",
    "shoes",
    "doctor",
    "appointment",
    "medicine",
];

const ACCENTED_WORDS: &[&str] = &[
    "café",
    "naïve",
    "résumé",
    "über",
    "señor",
    "mañana",
    "façade",
    "crème",
    "brûlée",
    "déjà",
    "voilà",
    "jalapeño",
    "smörgåsbord",
    "Zoë",
    "Renée",
    "São",
    "Kraków",
    "Zürich",
    "Malmö",
    "piñata",
    "fiancée",
    "entrée",
    "rosé",
    "soirée",
    "Ångström",
    "Øresund",
    "ça",
    "très",
    "élève",
    "straße",
];

const FOREIGN_WORDS: &[&str] = &[
    "привет",
    "спасибо",
    "хорошо",
    "завтра",
    "сегодня",
    "встреча",
    "дома",
    "работа",
    "кофе",
    "да",
    "нет",
    "пока",
    "你好",
    "谢谢",
    "明天",
    "今天",
    "東京",
    "日本語",
    "ありがとう",
    "こんにちは",
    "会議",
    "電車",
    "안녕하세요",
    "감사합니다",
    "γεια",
    "ευχαριστώ",
    "שלום",
    "مرحبا",
    "नमस्ते",
];

const EMOJI: &[&str] = &[
    "😀", "😂", "👍", "❤️", "🎉", "🙏", "😅", "🔥", "😍", "🤔", "👋", "🍕", "☕", "🚆", "🇫🇷",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "to", "sa", "vel", "quo", "dra", "nix", "por", "ul", "bea", "zan",
    "fi", "gor", "ith", "ment", "ter", "os", "an", "ble", "cor", "dun", "eph", "gal", "hov", "jin",
    "kru", "lim", "mab", "nor", "pex", "rud", "sil", "tav", "umb", "vor", "wex", "yal", "zor", "é",
    "ö", "ñ",
];

const FIRST_NAMES: &[&str] = &[
    "Alice",
    "Bob",
    "Chloé",
    "Dmitri",
    "Émile",
    "Fatima",
    "Grace",
    "Hiroshi",
    "Inès",
    "Jonas",
    "Kateřina",
    "Liam",
    "Maja",
    "Noah",
    "Olga",
    "Pablo",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Viktor",
    "Wen",
    "Xavier",
    "Yuki",
    "Zoë",
    "Алексей",
    "Мария",
    "美咲",
    "Chen",
    "Aisha",
    "Björn",
    "Léa",
    "Mateus",
    "Nadia",
    "Oskar",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Novák",
    "Ivanova",
    "Tanaka",
    "Kim",
    "Nguyen",
    "Jensen",
    "Silva",
    "O'Brien",
    "Schäfer",
    "Łukasik",
    "Petrov",
    "Yılmaz",
    "Haddad",
    "Andersson",
    "Moreau",
];

const GROUP_ADJECTIVES: &[&str] = &[
    "Family",
    "Weekend",
    "Office",
    "Climbing",
    "Book",
    "Running",
    "Neighbours",
    "Project",
    "Holiday",
    "Band",
    "Football",
    "Chess",
    "Garden",
    "Coffee",
    "Board-game",
    "Ski",
    "Cycling",
    "Parents'",
];

const GROUP_NOUNS: &[&str] = &[
    "crew", "club", "chat", "gang", "team", "squad", "friends", "group", "night", "plans", "🎉",
    "2019", "& co",
];

#[cfg(test)]
#[path = "synth_tests.rs"]
mod tests;
