use super::*;
use std::cell::Cell;

/// A fake target directory: `<root>/target/<profile>/deps/conformance-1234`.
fn fake_target(profile: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let deps = root.path().join("target").join(profile).join("deps");
    std::fs::create_dir_all(&deps).unwrap();
    let exe = deps.join("conformance-1234");
    std::fs::write(&exe, b"").unwrap();
    (root, exe)
}

#[test]
fn an_already_built_binary_is_found_without_building() {
    let (root, exe) = fake_target("debug");
    let built = root.path().join("target/debug/tandem");
    std::fs::write(&built, b"").unwrap();
    let path = find_or_build(&exe, root.path(), "tandem", false, |_| {
        Err("must not build".to_owned())
    })
    .unwrap();
    assert_eq!(path, built);
}

#[test]
fn under_cargo_an_existing_binary_is_rebuilt_first_so_it_is_never_stale() {
    let (root, exe) = fake_target("debug");
    let built = root.path().join("target/debug/tandem");
    std::fs::write(&built, b"old").unwrap();
    let path = find_or_build(&exe, root.path(), "tandem", true, |plan| {
        std::fs::write(plan.profile_dir.join("tandem"), b"new").unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"new");
    // A failing build is reported even though an old binary exists.
    let failed = find_or_build(
        &exe,
        root.path(),
        "tandem",
        true,
        |_| Err("boom".to_owned()),
    );
    assert!(matches!(failed, Err(Error::Build { .. })));
}

#[test]
fn a_missing_binary_is_built_into_the_same_target_and_profile() {
    let (root, exe) = fake_target("debug");
    let builds = Cell::new(0);
    let path = find_or_build(&exe, root.path(), "tandem-phone", false, |plan| {
        builds.set(builds.get() + 1);
        assert_eq!(plan.workspace, root.path());
        assert_eq!(plan.target_dir, root.path().join("target"));
        assert!(plan.profile_args.is_empty());
        let args: Vec<String> = plan
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "build",
                "--workspace",
                "--bins",
                "--target-dir",
                &root.path().join("target").display().to_string(),
            ]
        );
        std::fs::write(plan.profile_dir.join("tandem-phone"), b"").unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(builds.get(), 1);
    assert_eq!(path, root.path().join("target/debug/tandem-phone"));
}

#[test]
fn build_failures_and_still_missing_binaries_are_errors() {
    let (root, exe) = fake_target("debug");
    let failed = find_or_build(&exe, root.path(), "tandem", false, |_| {
        Err("exit 101".to_owned())
    });
    assert!(matches!(failed, Err(Error::Build { reason }) if reason == "exit 101"));
    let missing = find_or_build(&exe, root.path(), "nope", false, |_| Ok(())).unwrap_err();
    assert!(matches!(missing, Error::BinaryMissing { ref name, .. } if name == "nope"));
    assert!(
        missing.to_string().contains("target/debug/nope"),
        "{missing}"
    );
}

#[test]
fn release_and_custom_profiles_pass_their_flags() {
    let (root, exe) = fake_target("release");
    assert_eq!(
        BuildPlan::for_test_exe(&exe, root.path()).profile_args,
        ["--release"]
    );
    let (root, exe) = fake_target("fast-test");
    let plan = BuildPlan::for_test_exe(&exe, root.path());
    assert_eq!(plan.profile_args, ["--profile", "fast-test"]);
    assert_eq!(plan.profile_dir, root.path().join("target/fast-test"));
}

#[test]
fn a_guarded_child_is_killed_and_reaped_on_drop() {
    let guard = ChildGuard::spawn(Command::new("sleep").arg("30")).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", guard.id()));
    assert!(proc_dir.exists());
    drop(guard);
    assert!(
        !proc_dir.exists(),
        "the child is still there (running or a zombie)"
    );
}

#[test]
fn wait_timeout_reports_an_exit_or_that_it_still_runs() {
    let mut quick = ChildGuard::spawn(&mut Command::new("true")).unwrap();
    assert!(
        quick
            .wait_timeout(WAIT_FOR_TRUE)
            .unwrap()
            .unwrap()
            .success()
    );
    let mut slow = ChildGuard::spawn(Command::new("sleep").arg("30")).unwrap();
    assert_eq!(slow.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    let status = slow.kill().unwrap();
    assert!(!status.success());
}

#[test]
fn a_program_that_does_not_exist_is_an_io_error_naming_it() {
    let err = ChildGuard::spawn(&mut Command::new("/nonexistent/tandem")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/tandem"), "{err}");
}

const WAIT_FOR_TRUE: Duration = Duration::from_secs(5);

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

/// A shell with two children: both are found as its descendants, and `kill_all` ends them.
#[test]
fn a_process_tree_is_found_and_killed_whole() {
    let guard = ChildGuard::spawn(
        Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .stdin(Stdio::null()),
    )
    .unwrap();
    let root = guard.id();
    let started = Instant::now();
    // A child shows first as a copy of `sh`, then as `sleep` once it has exec'd.
    let sleeping = || {
        descendants(root)
            .iter()
            .filter(|c| comm(c.pid) == "sleep")
            .count()
    };
    while sleeping() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no children");
        std::thread::sleep(Duration::from_millis(10));
    }
    let children = descendants(root);
    assert!(
        children
            .iter()
            .all(|c| c.ppid == root && comm(c.pid) == "sleep")
    );
    kill_all(&children);
    drop(guard);
    // SIGKILL is delivered asynchronously: each child is gone (or a zombie) soon after.
    for child in children {
        let alive = || {
            proc_stat(child.pid).is_some_and(|p| p.start == child.start)
                && !std::fs::read_to_string(format!("/proc/{}/stat", child.pid))
                    .unwrap_or_default()
                    .contains(") Z ")
        };
        let killed = Instant::now();
        while alive() {
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "{} outlived kill_all",
                child.pid
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
