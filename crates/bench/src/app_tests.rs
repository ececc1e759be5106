//! Tests of the app benchmark's parts: reading `/proc`, the figures, and the screen and bus
//! it starts (real `Xvfb` and `dbus-daemon`; the app itself is measured by real runs).

use super::*;

#[test]
fn pss_is_the_sum_of_the_pss_lines() {
    let rollup = "55a0-7ffd ---p 00000000 00:00 0 [rollup]\n\
                  Rss:               20480 kB\n\
                  Pss:               12000 kB\n\
                  Pss_Dirty:          9000 kB\n\
                  Pss_Anon:           8000 kB\n\
                  Shared_Clean:       4000 kB\n";
    assert_eq!(parse_pss_kb(rollup), 12_000, "Pss_* lines are parts of Pss");
    assert_eq!(parse_pss_kb(""), 0);
    let me = pss_kb(std::process::id());
    assert!(me > 0, "this process has a PSS");
}

#[test]
fn a_stat_line_is_read_past_a_name_with_spaces_and_parentheses() {
    let stat = "4242 (Web (Content) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 \
                123456 1000 50 18446744073709551615";
    let parsed = parse_stat(4242, stat).unwrap();
    assert_eq!(
        parsed,
        Proc {
            pid: 4242,
            ppid: 17,
            start: 123_456
        }
    );
    assert!(parse_stat(1, "garbage").is_none());
    let me = proc_stat(std::process::id()).unwrap();
    assert!(me.ppid > 0 && me.start > 0);
}

#[test]
fn the_ready_line_carries_the_apps_own_milliseconds() {
    assert_eq!(app_reported_ms("ready: chat_list 734"), Some(734));
    assert_eq!(app_reported_ms("ready: chat_list"), None);
}

#[test]
fn medians_pick_the_middle_run() {
    let ms = |v: u64| Duration::from_millis(v);
    assert_eq!(median(&[ms(900), ms(300), ms(500)]), ms(500));
    assert_eq!(median(&[]), Duration::ZERO);
    let runs = [
        Memory {
            kb: 300 * 1024,
            ui_kb: 100 * 1024,
            ..Memory::default()
        },
        Memory {
            kb: 100 * 1024,
            ..Memory::default()
        },
        Memory {
            kb: 200 * 1024,
            ui_kb: 50 * 1024,
            web_kb: 150 * 1024,
            ..Memory::default()
        },
    ];
    let mid = median_memory(&runs);
    assert!((mid.total - 200.0).abs() < 1e-9, "{mid:?}");
    assert!((mid.web - 150.0).abs() < 1e-9, "{mid:?}");
    assert_eq!(totals(&runs), "300.0, 100.0, 200.0");
    assert!(mid.parts().starts_with("app process 50.0, web 150.0"));
}

#[test]
fn the_options_pick_the_history_size() {
    let quick = Options::new(true, None, None);
    assert_eq!(quick.messages, MESSAGES_QUICK);
    assert_eq!(quick.work, PathBuf::from(DEFAULT_WORK));
    let full = Options::new(
        false,
        Some(PathBuf::from("/w")),
        Some(PathBuf::from("/a.deb")),
    );
    assert_eq!(full.messages, MESSAGES_FULL);
    assert_eq!(full.work, PathBuf::from("/w"));
}

/// The real screen and bus come up; a process tree's memory is summed over its children, and
/// the whole tree dies with its guard.
#[test]
fn a_process_tree_is_measured_and_killed_with_its_guard() {
    let screen = Screen::start().unwrap();
    assert!(screen.display.starts_with(':'), "{}", screen.display);
    assert!(screen.bus.starts_with("unix:"), "{}", screen.bus);
    // The bus answers: a client registers and lists the names.
    let listed = Command::new(program("dbus-send", "dbus-bin").unwrap())
        .arg(format!("--bus={}", screen.bus))
        .args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.ListNames",
        ])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "the bus does not answer: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("org.freedesktop.DBus"));
    let guard = Guard::spawn(
        Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .stdin(Stdio::null()),
        "sh",
    )
    .unwrap();
    let root = guard.pid();
    let started = Instant::now();
    while descendants(root).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no children");
        std::thread::sleep(Duration::from_millis(10));
    }
    let children = descendants(root);
    let memory = tree_memory(root);
    assert!(memory.ui_kb > 0 && memory.other_kb > 0, "{memory:?}");
    assert_eq!(memory.kb, memory.ui_kb + memory.other_kb, "{memory:?}");
    drop(guard);
    for child in children {
        let alive = proc_stat(child.pid).is_some_and(|p| p.start == child.start)
            && !std::fs::read_to_string(format!("/proc/{}/stat", child.pid))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "{} outlived its guard", child.pid);
    }
}
