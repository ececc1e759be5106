//! The date-and-time prefix that starts every WhatsApp record, in all its locale variants, and
//! the per-file decision of what the three date numbers mean.
//!
//! A header is read in two steps. [`parse_header`] recognises the *shape* of one line without
//! deciding what `3/4/22` means: brackets (iOS) or ` - ` (Android) or `: ` (old iOS), date first
//! or time first, the date separator, the three raw date numbers with any era or Buddhist-year
//! mark, and the time with its optional AM/PM marker. Then [`detect_order`] looks at every date
//! of the file at once to decide day-month-year, month-day-year or year-month-day, and
//! [`civil_datetime`] turns one header into a wall-clock date and time, or says why it cannot
//! exist.

use jiff::civil::DateTime;

/// How a header is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `[date, time] body` (iOS).
    Bracket,
    /// `date, time - body` (Android).
    Dash,
    /// `date, time: body` (the old iOS format without brackets).
    Colon,
}

/// What every header of one file has in common. A line whose header has another shape is not a
/// new record but a continuation line of the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The framing.
    pub framing: Framing,
    /// The time comes before the date (Vietnamese).
    pub time_first: bool,
    /// The character between the date numbers: `/`, `.` or `-`.
    pub date_sep: char,
}

/// A mark that says how to read a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum YearMark {
    /// A plain number.
    Plain,
    /// `2565 BE`: Buddhist era.
    Buddhist,
    /// `R4`, `H31`: a Japanese era letter.
    Era(char),
}

/// One of the three numbers of a date, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// Its value.
    pub value: u32,
    /// How many digits it was written with.
    pub digits: u8,
    /// An era or Buddhist-year mark.
    pub mark: YearMark,
}

impl Part {
    fn is_year_like(&self) -> bool {
        self.digits >= 3 || self.mark != YearMark::Plain
    }
}

/// Morning or afternoon, on a 12-hour clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meridiem {
    /// Before noon.
    Am,
    /// After noon.
    Pm,
}

/// The time of a header, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawTime {
    /// Hour as written (0-23, or 0-12 with a meridiem).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second, when written.
    pub second: Option<u32>,
    /// AM/PM, when written.
    pub meridiem: Option<Meridiem>,
}

/// A recognised header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Its shape.
    pub shape: Shape,
    /// The three date numbers in the order written.
    pub parts: [Part; 3],
    /// A comma stood between date and time.
    pub comma: bool,
    /// The time.
    pub time: RawTime,
    /// Byte offset in the line where the body (author and text) starts.
    pub body_start: usize,
    /// The line started with an invisible mark before the header: iOS does this for
    /// attachment lines.
    pub leading_mark: bool,
}

/// The meaning of the three date numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateOrder {
    /// Day, month, year.
    Dmy,
    /// Month, day, year.
    Mdy,
    /// Year, month, day.
    Ymd,
}

/// A normalised character of a header with the byte offset just after it in the line.
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    end: usize,
}

/// How many normalised characters of a line are enough to hold any header.
const HEADER_WINDOW: usize = 48;

/// The start of a line as the header parser sees it: invisible marks skipped, native digits
/// made ASCII, odd spaces made plain, the Arabic comma made a comma.
fn normalise(line: &str) -> Vec<Ch> {
    let mut out = Vec::with_capacity(HEADER_WINDOW);
    for (i, c) in line.char_indices() {
        if out.len() >= HEADER_WINDOW {
            break;
        }
        if crate::text::is_mark(c) {
            continue;
        }
        let end = i + c.len_utf8();
        let c = match c {
            '\u{0660}'..='\u{0669}' => ascii_digit(u32::from(c) - 0x0660),
            '\u{06F0}'..='\u{06F9}' => ascii_digit(u32::from(c) - 0x06F0),
            '\u{0966}'..='\u{096F}' => ascii_digit(u32::from(c) - 0x0966),
            '\u{060C}' => ',',
            c if crate::text::is_odd_space(c) => ' ',
            c => c,
        };
        out.push(Ch { c, end });
    }
    out
}

fn ascii_digit(d: u32) -> char {
    char::from_digit(d, 10).unwrap_or('?')
}

/// A cursor over the normalised characters.
struct Cur<'a> {
    s: &'a [Ch],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).map(|ch| ch.c)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.s.get(self.i + ahead).map(|ch| ch.c)
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_spaces(&mut self) -> usize {
        let mut n = 0;
        while self.eat(' ') {
            n += 1;
        }
        n
    }

    /// Eats `word` (ASCII letters compared without case, other characters exactly).
    fn eat_str_ci(&mut self, word: &str) -> bool {
        let start = self.i;
        for w in word.chars() {
            match self.peek() {
                Some(c) if c.eq_ignore_ascii_case(&w) => self.i += 1,
                _ => {
                    self.i = start;
                    return false;
                }
            }
        }
        true
    }

    /// One to `max` ASCII digits, refusing a longer run.
    fn digits(&mut self, max: u8) -> Option<(u32, u8)> {
        let mut value: u32 = 0;
        let mut n: u8 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            if n == max {
                return None;
            }
            value = value * 10 + d;
            n += 1;
            self.i += 1;
        }
        (n > 0).then_some((value, n))
    }

    /// Byte offset in the line just after the last eaten character.
    fn byte_pos(&self) -> usize {
        match self.i.checked_sub(1).and_then(|j| self.s.get(j)) {
            Some(ch) => ch.end,
            None => 0,
        }
    }
}

/// Recognises a header at the start of `line`, or says it is not one.
pub(crate) fn parse_header(line: &str) -> Option<Header> {
    let chars = normalise(line);
    let mut cur = Cur { s: &chars, i: 0 };
    let leading_mark = line.starts_with(crate::text::is_dir_mark);
    let bracket = cur.eat('[');
    let start = cur.i;
    let (parts, date_sep, comma, time, time_first) = match date_then_time(&mut cur) {
        Some((parts, sep, comma, time)) => (parts, sep, comma, time, false),
        None => {
            cur.i = start;
            let (time, parts, sep) = time_then_date(&mut cur)?;
            (parts, sep, true, time, true)
        }
    };
    let framing = if bracket {
        if !cur.eat(']') {
            return None;
        }
        cur.eat(' ');
        Framing::Bracket
    } else if cur.peek() == Some(' ') && matches!(cur.peek_at(1), Some('-' | '–')) {
        cur.i += 2;
        if !(cur.eat(' ') || cur.at_end()) {
            return None;
        }
        Framing::Dash
    } else if cur.eat(':') {
        if !(cur.eat(' ') || cur.at_end()) {
            return None;
        }
        Framing::Colon
    } else {
        return None;
    };
    Some(Header {
        shape: Shape {
            framing,
            time_first,
            date_sep,
        },
        parts,
        comma,
        time,
        body_start: cur.byte_pos(),
        leading_mark,
    })
}

type DateTimeParts = ([Part; 3], char, bool, RawTime);

fn date_then_time(cur: &mut Cur<'_>) -> Option<DateTimeParts> {
    let (parts, sep) = date(cur)?;
    let comma = cur.eat(',');
    let spaces = cur.eat_spaces();
    if !comma && spaces == 0 {
        return None;
    }
    // Finnish: `18.3.2022 klo 14.56`.
    if cur.eat_str_ci("klo ") {
        cur.eat_spaces();
    }
    let time = time(cur)?;
    Some((parts, sep, comma, time))
}

fn time_then_date(cur: &mut Cur<'_>) -> Option<(RawTime, [Part; 3], char)> {
    let time = time(cur)?;
    if !cur.eat(',') {
        return None;
    }
    cur.eat_spaces();
    let (parts, sep) = date(cur)?;
    Some((time, parts, sep))
}

fn date(cur: &mut Cur<'_>) -> Option<([Part; 3], char)> {
    let p0 = part(cur)?;
    let sep = cur.peek().filter(|c| matches!(c, '/' | '.' | '-'))?;
    cur.i += 1;
    if sep == '.' {
        cur.eat(' ');
    }
    let p1 = part(cur)?;
    if p1.mark != YearMark::Plain || !cur.eat(sep) {
        return None;
    }
    if sep == '.' {
        cur.eat(' ');
    }
    let p2 = part(cur)?;
    if sep == '.' && cur.peek() == Some('.') {
        cur.i += 1;
    }
    Some(([p0, p1, p2], sep))
}

fn part(cur: &mut Cur<'_>) -> Option<Part> {
    let era = match (cur.peek(), cur.peek_at(1)) {
        (Some(e @ ('R' | 'H' | 'S' | 'T' | 'M')), Some(d)) if d.is_ascii_digit() => {
            cur.i += 1;
            Some(e)
        }
        _ => None,
    };
    let (value, digits) = cur.digits(4)?;
    let mut mark = era.map_or(YearMark::Plain, YearMark::Era);
    if era.is_none() && digits == 4 {
        let save = cur.i;
        if cur.eat(' ') && cur.eat_str_ci("BE") {
            mark = YearMark::Buddhist;
        } else {
            cur.i = save;
        }
    }
    Some(Part {
        value,
        digits,
        mark,
    })
}

/// AM/PM words written before the time (Japanese, Korean, Chinese).
const MERIDIEM_BEFORE: &[(&str, Meridiem)] = &[
    ("午前", Meridiem::Am),
    ("午後", Meridiem::Pm),
    ("오전", Meridiem::Am),
    ("오후", Meridiem::Pm),
    ("上午", Meridiem::Am),
    ("下午", Meridiem::Pm),
];

/// AM/PM words written after the time, longest first.
const MERIDIEM_AFTER: &[(&str, Meridiem)] = &[
    ("a. m.", Meridiem::Am),
    ("p. m.", Meridiem::Pm),
    ("a.m.", Meridiem::Am),
    ("p.m.", Meridiem::Pm),
    ("am", Meridiem::Am),
    ("pm", Meridiem::Pm),
    ("ص", Meridiem::Am),
    ("م", Meridiem::Pm),
    ("午前", Meridiem::Am),
    ("午後", Meridiem::Pm),
];

fn time(cur: &mut Cur<'_>) -> Option<RawTime> {
    let mut meridiem = None;
    for (word, m) in MERIDIEM_BEFORE {
        if cur.eat_str_ci(word) {
            meridiem = Some(*m);
            cur.eat_spaces();
            break;
        }
    }
    let (hour, _) = cur.digits(2)?;
    let tsep = cur.peek().filter(|c| matches!(c, ':' | '.'))?;
    cur.i += 1;
    let (minute, mdigits) = cur.digits(2)?;
    if mdigits != 2 {
        return None;
    }
    let mut second = None;
    if cur.peek() == Some(tsep) && cur.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
        cur.i += 1;
        let (s, sdigits) = cur.digits(2)?;
        if sdigits != 2 {
            return None;
        }
        second = Some(s);
    }
    if meridiem.is_none() {
        let save = cur.i;
        cur.eat_spaces();
        meridiem = MERIDIEM_AFTER.iter().find_map(|(word, m)| {
            let before = cur.i;
            if cur.eat_str_ci(word) && is_boundary(cur.peek()) {
                Some(*m)
            } else {
                cur.i = before;
                None
            }
        });
        if meridiem.is_none() {
            cur.i = save;
        }
    }
    Some(RawTime {
        hour,
        minute,
        second,
        meridiem,
    })
}

fn is_boundary(c: Option<char>) -> bool {
    matches!(c, None | Some(' ' | ']' | ',' | ':' | '-' | '–'))
}

/// Decides, from every date of a file, what its three numbers mean.
///
/// A number of three or more digits, or with an era or `BE` mark, is the year; a first number
/// above 31 is a year too. With the year last, a first number above 12 proves day-first and a
/// second number above 12 proves month-first; when both kinds appear the majority wins (the
/// others then fail as impossible dates). When nothing proves either, the order under which the
/// records are closer to chronological wins, and a tie falls back to the locales' habits: `.` and
/// `-` are day-first; `/` is month-first on iOS, with a 12-hour clock, or with unpadded numbers
/// and a two-digit year (`M/d/yy`), and day-first otherwise (`dd/MM/yyyy`).
pub(crate) fn detect_order(headers: &[Header]) -> DateOrder {
    if headers.iter().any(|h| h.parts[0].is_year_like()) {
        return DateOrder::Ymd;
    }
    let year_last = headers.iter().any(|h| h.parts[2].is_year_like());
    if !year_last && headers.iter().any(|h| h.parts[0].value > 31) {
        return DateOrder::Ymd;
    }
    let day_first = headers.iter().filter(|h| h.parts[0].value > 12).count();
    let month_first = headers.iter().filter(|h| h.parts[1].value > 12).count();
    if day_first > 0 || month_first > 0 {
        return if month_first > day_first {
            DateOrder::Mdy
        } else {
            DateOrder::Dmy
        };
    }
    let dmy = inversions(headers, DateOrder::Dmy);
    let mdy = inversions(headers, DateOrder::Mdy);
    if dmy != mdy {
        return if dmy < mdy {
            DateOrder::Dmy
        } else {
            DateOrder::Mdy
        };
    }
    let Some(first) = headers.first() else {
        return DateOrder::Dmy;
    };
    if first.shape.date_sep != '/' {
        return DateOrder::Dmy;
    }
    let ios = first.shape.framing != Framing::Dash;
    let twelve_hour = headers.iter().any(|h| h.time.meridiem.is_some());
    let us_short = headers
        .iter()
        .any(|h| h.parts[2].digits <= 2 && (h.parts[0].digits == 1 || h.parts[1].digits == 1));
    if ios || twelve_hour || us_short {
        DateOrder::Mdy
    } else {
        DateOrder::Dmy
    }
}

/// How many records are earlier than the one before them when the dates are read in `order`.
fn inversions(headers: &[Header], order: DateOrder) -> usize {
    let keys: Vec<_> = headers
        .iter()
        .map(|h| {
            let (y, m, d) = arrange(&h.parts, order);
            (
                y.value,
                m.value,
                d.value,
                hour24(&h.time),
                h.time.minute,
                h.time.second,
            )
        })
        .collect();
    keys.windows(2)
        .filter(|w| matches!(w, [a, b] if b < a))
        .count()
}

fn arrange(parts: &[Part; 3], order: DateOrder) -> (Part, Part, Part) {
    let [a, b, c] = *parts;
    match order {
        DateOrder::Dmy => (c, b, a),
        DateOrder::Mdy => (c, a, b),
        DateOrder::Ymd => (a, b, c),
    }
}

fn hour24(t: &RawTime) -> u32 {
    match t.meridiem {
        None => t.hour,
        Some(Meridiem::Am) => t.hour % 12,
        Some(Meridiem::Pm) => t.hour % 12 + 12,
    }
}

/// The Gregorian year a year part stands for.
fn year_of(p: Part) -> Result<i16, String> {
    let year = match p.mark {
        YearMark::Era(era) => {
            let base = match era {
                'R' => 2018,
                'H' => 1988,
                'S' => 1925,
                'T' => 1911,
                _ => 1867,
            };
            base + p.value
        }
        YearMark::Buddhist => p.value.saturating_sub(543),
        YearMark::Plain => match p.digits {
            1 | 2 => 2000 + p.value,
            4 if p.value >= 2400 => p.value - 543,
            4 => p.value,
            _ => return Err(format!("a year of {} digits", p.digits)),
        },
    };
    if !(1970..=2200).contains(&year) {
        return Err(format!("the year {year} is out of range"));
    }
    i16::try_from(year).map_err(|_| format!("the year {year} is out of range"))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The wall-clock date and time of a header read in `order`, or why it cannot exist.
pub(crate) fn civil_datetime(h: &Header, order: DateOrder) -> Result<DateTime, String> {
    let (y, m, d) = arrange(&h.parts, order);
    if m.mark != YearMark::Plain || d.mark != YearMark::Plain {
        return Err("an era mark on a day or month".to_owned());
    }
    let year = year_of(y)?;
    let month = m.value;
    let month_name = month
        .checked_sub(1)
        .and_then(|i| MONTHS.get(usize::try_from(i).ok()?))
        .ok_or_else(|| format!("there is no month {month}"))?;
    let t = &h.time;
    if t.meridiem.is_some() && t.hour > 12 {
        return Err(format!("hour {} on a 12-hour clock", t.hour));
    }
    let hour = hour24(t);
    if hour > 23 {
        return Err(format!("there is no hour {hour}"));
    }
    if t.minute > 59 {
        return Err(format!("there is no minute {}", t.minute));
    }
    let second = t.second.unwrap_or(0);
    if second > 59 {
        return Err(format!("there is no second {second}"));
    }
    let small = |v: u32| i8::try_from(v).unwrap_or(i8::MAX);
    DateTime::new(
        year,
        small(month),
        small(d.value),
        small(hour),
        small(t.minute),
        small(second),
        0,
    )
    .map_err(|_| format!("{month_name} {year} has no day {}", d.value))
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
