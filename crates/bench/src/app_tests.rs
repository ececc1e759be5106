//! Tests of the app benchmark's parts: reading `/proc` and the figures (the app itself is
//! measured by real runs).

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

/// A process tree's memory is summed over its children and split by kind.
#[test]
fn a_process_trees_memory_is_summed_over_its_children() {
    let mut command = Command::new("sh");
    command
        .args(["-c", "sleep 30 & sleep 30 & wait"])
        .stdin(Stdio::null());
    let guard = ChildGuard::spawn(&mut command).unwrap();
    let root = guard.id();
    let started = Instant::now();
    while descendants(root).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no children");
        std::thread::sleep(Duration::from_millis(10));
    }
    let memory = tree_memory(root);
    assert!(memory.ui_kb > 0 && memory.other_kb > 0, "{memory:?}");
    assert_eq!(memory.kb, memory.ui_kb + memory.other_kb, "{memory:?}");
    assert_eq!(memory.web_kb + memory.network_kb, 0, "{memory:?}");
    kill_all(&descendants(root));
}
