use super::*;

fn header(line: &str) -> Header {
    match parse_header(line) {
        Some(h) => h,
        None => panic!("not recognised as a header: {line:?}"),
    }
}

fn values(h: &Header) -> [u32; 3] {
    h.parts.map(|p| p.value)
}

fn time(h: &Header) -> (u32, u32, Option<u32>, Option<Meridiem>) {
    (h.time.hour, h.time.minute, h.time.second, h.time.meridiem)
}

fn body<'a>(line: &'a str, h: &Header) -> &'a str {
    &line[h.body_start..]
}

#[test]
fn android_en_gb_header_is_day_first_with_comma_and_dash() {
    let line = "23/03/2022, 13:31 - Dmitry: hi";
    let h = header(line);
    assert_eq!(h.shape.framing, Framing::Dash);
    assert_eq!(h.shape.date_sep, '/');
    assert!(!h.shape.time_first);
    assert!(h.comma);
    assert_eq!(values(&h), [23, 3, 2022]);
    assert_eq!(time(&h), (13, 31, None, None));
    assert_eq!(body(line, &h), "Dmitry: hi");
}

#[test]
fn ios_header_has_brackets_and_seconds() {
    let line = "[3/18/22, 14:56:01] Elon: hey";
    let h = header(line);
    assert_eq!(h.shape.framing, Framing::Bracket);
    assert_eq!(values(&h), [3, 18, 22]);
    assert_eq!(h.parts[2].digits, 2);
    assert_eq!(time(&h), (14, 56, Some(1), None));
    assert_eq!(body(line, &h), "Elon: hey");
}

#[test]
fn czech_and_french_headers_have_no_comma() {
    let h = header("23.03.22 13:31 - Dmitry S: Hello");
    assert_eq!(h.shape.date_sep, '.');
    assert!(!h.comma);
    assert_eq!(values(&h), [23, 3, 22]);
    let h = header("[3/27/22 21:41:35] Dmitry S: Hello World");
    assert!(!h.comma);
    assert_eq!(time(&h), (21, 41, Some(35), None));
}

#[test]
fn dutch_header_uses_hyphens() {
    let h = header("18-03-2022 14:56 - Dmitry S: Hello");
    assert_eq!(h.shape.date_sep, '-');
    assert_eq!(values(&h), [18, 3, 2022]);
}

#[test]
fn indonesian_time_uses_dots() {
    let h = header("[3/18/22 14.56.01] Elon Musk: x");
    assert_eq!(time(&h), (14, 56, Some(1), None));
}

#[test]
fn vietnamese_time_comes_before_the_date() {
    let line = "[14:56:01, 3/18/22] Musk Elon: x";
    let h = header(line);
    assert!(h.shape.time_first);
    assert_eq!(values(&h), [3, 18, 22]);
    assert_eq!(time(&h), (14, 56, Some(1), None));
    assert_eq!(body(line, &h), "Musk Elon: x");
}

#[test]
fn arabic_header_with_native_digits_marks_arabic_comma_and_pm_sign() {
    let line = "[\u{661}\u{668}\u{200f}/\u{663}\u{200f}/\u{662}\u{660}\u{662}\u{662}\u{60c} \u{662}:\u{665}\u{666}:\u{660}\u{660}\u{a0}\u{645}] \u{202a}+40\u{a0}521\u{202c}: x";
    let h = header(line);
    assert_eq!(values(&h), [18, 3, 2022]);
    assert!(h.comma);
    assert_eq!(time(&h), (2, 56, Some(0), Some(Meridiem::Pm)));
    assert_eq!(body(line, &h), "\u{202a}+40\u{a0}521\u{202c}: x");
}

#[test]
fn persian_digits_read_as_ascii() {
    let h = header(
        "\u{6f1}\u{6f8}/\u{6f3}/\u{6f2}\u{6f0}\u{6f2}\u{6f2}, \u{6f1}\u{6f4}:\u{6f5}\u{6f6} - a: b",
    );
    assert_eq!(values(&h), [18, 3, 2022]);
    assert_eq!(time(&h), (14, 56, None, None));
}

#[test]
fn rlm_before_each_date_part_is_skipped() {
    let h = header("[\u{200f}18\u{200f}/3\u{200f}/2022\u{60c} 14:56:01] Elon Musk: x");
    assert_eq!(values(&h), [18, 3, 2022]);
}

#[test]
fn a_leading_lrm_is_noticed() {
    let h = header("\u{200e}[3/27/22, 21:41:55] Dmitry S: \u{200e}image omitted");
    assert!(h.leading_mark);
    assert!(!header("[3/27/22, 21:41:55] D: x").leading_mark);
}

#[test]
fn buddhist_and_japanese_era_years_are_marked() {
    let h = header("[3/18/2565 BE, 14:56:01] Elon Musk: x");
    assert_eq!(h.parts[2].mark, YearMark::Buddhist);
    assert_eq!(h.parts[2].value, 2565);
    let h = header("[1/7/R5, 23:32:30] Elon Musk: x");
    assert_eq!(h.parts[2].mark, YearMark::Era('R'));
    assert_eq!(h.parts[2].value, 5);
    let h = header("[4/30/H31, 10:00:00] A: x");
    assert_eq!(h.parts[2].mark, YearMark::Era('H'));
}

#[test]
fn every_am_pm_spelling_is_read() {
    let cases = [
        ("01/30/2019, 08:49 p. m. - J: x", Meridiem::Pm, 8),
        ("01/01/2019, 11:25 a. m. - J: x", Meridiem::Am, 11),
        ("11/18/22, 8:48 PM - J: x", Meridiem::Pm, 8),
        ("11/18/22, 8:48\u{202f}PM - J: x", Meridiem::Pm, 8),
        ("18/03/2022, 1:08 pm - J: x", Meridiem::Pm, 1),
        ("18/03/2022, 1:08\u{a0}am - J: x", Meridiem::Am, 1),
        ("18/03/2022, 1:08 a.m. - J: x", Meridiem::Am, 1),
        (
            "[18/3/2022\u{60c} 9:41:35\u{a0}\u{635}] J: x",
            Meridiem::Am,
            9,
        ),
        ("2022. 3. 18. 오후 2:56 - J: x", Meridiem::Pm, 2),
        ("[2022/3/18 下午2:56:01] J: x", Meridiem::Pm, 2),
    ];
    for (line, meridiem, hour) in cases {
        let h = header(line);
        assert_eq!(h.time.meridiem, Some(meridiem), "{line}");
        assert_eq!(h.time.hour, hour, "{line}");
        assert!(line[h.body_start..].starts_with("J: x"), "{line}");
    }
}

#[test]
fn the_old_ios_format_ends_the_header_with_a_colon() {
    let line = "7/1/16, 4:56:55 PM: Anna: see you";
    let h = header(line);
    assert_eq!(h.shape.framing, Framing::Colon);
    assert_eq!(time(&h), (4, 56, Some(55), Some(Meridiem::Pm)));
    assert_eq!(body(line, &h), "Anna: see you");
}

#[test]
fn an_empty_android_body_is_still_a_header() {
    let h = header("18/03/2022, 14:56 - ");
    assert_eq!(body("18/03/2022, 14:56 - ", &h), "");
    assert!(parse_header("18/03/2022, 14:56 -").is_some());
}

#[test]
fn lines_that_are_not_headers() {
    for line in [
        "",
        "hello",
        "12:30 meeting",
        "1.5.2 - release notes",
        "[1/2/22, 10:00:00 no closing bracket",
        "2022-03-18",
        "18/03/2022 - no time",
        "18/03/2022, 14:5 - short minute",
        "18/03/2022, 14:56 no dash",
        "18/03/20222, 14:56 - five-digit year",
        "18/03/2022, 14:56:7 - one-digit second",
        "https://foursquare.com/v/4e89af95e5fa82ad4c0aa03b",
        "London, United Kingdom",
        "18/03, 14:56 - two parts",
    ] {
        assert!(parse_header(line).is_none(), "{line:?}");
    }
}

fn headers(lines: &[&str]) -> Vec<Header> {
    lines.iter().map(|l| header(l)).collect()
}

#[test]
fn a_day_above_twelve_proves_day_first_and_a_month_position_above_twelve_month_first() {
    let dmy = headers(&["01/02/2022, 10:00 - a: x", "20/02/2022, 10:00 - a: x"]);
    assert_eq!(detect_order(&dmy), DateOrder::Dmy);
    let mdy = headers(&["01/02/22, 10:00 - a: x", "02/20/22, 10:00 - a: x"]);
    assert_eq!(detect_order(&mdy), DateOrder::Mdy);
}

#[test]
fn a_four_digit_first_number_is_the_year() {
    let ymd = headers(&["2019/01/30, 20:49 - a: x"]);
    assert_eq!(detect_order(&ymd), DateOrder::Ymd);
    let era_first = headers(&["[R4/3/18 14:56:01] a: x"]);
    assert_eq!(detect_order(&era_first), DateOrder::Ymd);
}

#[test]
fn the_majority_wins_when_dates_disagree() {
    let h = headers(&[
        "13/01/2022, 10:00 - a: x",
        "14/01/2022, 10:00 - a: x",
        "01/13/2022, 10:00 - a: x",
    ]);
    assert_eq!(detect_order(&h), DateOrder::Dmy);
    assert!(civil_datetime(&h[2], DateOrder::Dmy).is_err());
}

#[test]
fn ambiguous_dates_follow_chronology_first() {
    // 1 Feb, 1 Mar, 2 Jan as D/M, or 2 Jan, 3 Jan, 1 Feb as M/D: only the latter is sorted.
    let h = headers(&[
        "01.02.22 10:00 - a: x",
        "01.03.22 10:00 - a: x",
        "02.01.22 10:00 - a: x",
    ]);
    assert_eq!(detect_order(&h), DateOrder::Mdy);
}

#[test]
fn ambiguous_dates_fall_back_to_locale_habits() {
    let dots = headers(&["11.01.2023 16:13 - a: x"]);
    assert_eq!(detect_order(&dots), DateOrder::Dmy);
    let en_gb = headers(&["11/01/2023, 16:13 - a: x"]);
    assert_eq!(detect_order(&en_gb), DateOrder::Dmy);
    let ios = headers(&["[1/11/23, 16:11:21] a: x"]);
    assert_eq!(detect_order(&ios), DateOrder::Mdy);
    let us_short = headers(&["12/9/20, 23:55 - a: x"]);
    assert_eq!(detect_order(&us_short), DateOrder::Mdy);
    let twelve_hour = headers(&["01/02/2022, 10:00 AM - a: x"]);
    assert_eq!(detect_order(&twelve_hour), DateOrder::Mdy);
}

fn civil(line: &str, order: DateOrder) -> Result<DateTime, String> {
    civil_datetime(&header(line), order)
}

#[test]
fn civil_times_cover_years_clocks_and_calendars() {
    let dt = |y, m, d, h, mi, s| DateTime::new(y, m, d, h, mi, s, 0).unwrap();
    assert_eq!(
        civil("[3/18/2565 BE, 14:56:01] a: x", DateOrder::Mdy),
        Ok(dt(2022, 3, 18, 14, 56, 1))
    );
    assert_eq!(
        civil("[1/7/R5, 23:32:30] a: x", DateOrder::Mdy),
        Ok(dt(2023, 1, 7, 23, 32, 30))
    );
    assert_eq!(
        civil("[4/30/H31, 09:00:00] a: x", DateOrder::Mdy),
        Ok(dt(2019, 4, 30, 9, 0, 0))
    );
    assert_eq!(
        civil("[3/18/2565, 14:56:01] a: x", DateOrder::Mdy),
        Ok(dt(2022, 3, 18, 14, 56, 1))
    );
    assert_eq!(
        civil("12/30/2021, 12:10 p. m. - a: x", DateOrder::Mdy),
        Ok(dt(2021, 12, 30, 12, 10, 0))
    );
    assert_eq!(
        civil("12/30/2021, 12:10 a. m. - a: x", DateOrder::Mdy),
        Ok(dt(2021, 12, 30, 0, 10, 0))
    );
    assert_eq!(
        civil("06/20/2020, 00:08 a. m. - a: x", DateOrder::Mdy),
        Ok(dt(2020, 6, 20, 0, 8, 0))
    );
    assert_eq!(
        civil("20/06/20, 00:08 - a: x", DateOrder::Dmy),
        Ok(dt(2020, 6, 20, 0, 8, 0))
    );
}

#[test]
fn impossible_dates_say_why() {
    let err = civil("13/13/2022, 10:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("month 13"), "{err}");
    let err = civil("30/02/2022, 10:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("February 2022 has no day 30"), "{err}");
    let err = civil("01/02/2022, 25:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("hour 25"), "{err}");
    let err = civil("01/02/2022, 13:00 PM - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("12-hour"), "{err}");
    let err = civil("01/02/2022, 10:61 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("minute 61"), "{err}");
    let err = civil("01/02/022, 10:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("3 digits"), "{err}");
    let err = civil("01/02/1066, 10:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("1066"), "{err}");
    let err = civil("00/02/2022, 10:00 - a: x", DateOrder::Dmy).unwrap_err();
    assert!(err.contains("no day 0"), "{err}");
}
