use super::*;

/// What `dbus-monitor` prints for one `Notify` call (with a multi-line body and hints), around
/// the signals it prints when it registers.
const MONITOR: &str = r#"signal time=1.0 sender=org.freedesktop.DBus -> destination=:1.0 serial=2 path=/org/freedesktop/DBus; interface=org.freedesktop.DBus; member=NameAcquired
   string ":1.0"
signal time=1.1 sender=org.freedesktop.DBus -> destination=:1.0 serial=4 path=/org/freedesktop/DBus; interface=org.freedesktop.DBus; member=NameLost
   string ":1.0"
method call time=2.0 sender=:1.7 -> destination=org.freedesktop.Notifications serial=9 path=/org/freedesktop/Notifications; interface=org.freedesktop.Notifications; member=Notify
   string "Tandem"
   uint32 0
   string ""
   string "Bob"
   string "Dinner at 8?
See you"
   array [
   ]
   array [
      dict entry(
         string "urgency"
         variant             byte 1
      )
   ]
   int32 -1
method call time=3.0 sender=:1.7 -> destination=org.freedesktop.Notifications serial=10 path=/org/freedesktop/Notifications; interface=org.freedesktop.Notifications; member=Notify
   string "Tandem"
   uint32 0
   string "icon"
   string "Garden Club"
   string "New message"
"#;

#[test]
fn notify_calls_are_read_off_the_monitor_with_their_strings_in_order() {
    let mut seen = Seen::default();
    assert!(!seen.ready);
    for line in MONITOR.lines() {
        seen.take(line);
    }
    assert!(seen.ready);
    assert_eq!(seen.calls.len(), 2, "{:?}", seen.calls);
    let first = &seen.calls[0];
    assert_eq!(
        first.strings,
        ["Tandem", "", "Bob", "Dinner at 8?\nSee you"]
    );
    assert_eq!(first.summary(), "Bob");
    assert_eq!(first.body(), "Dinner at 8?\nSee you");
    assert!(first.mentions("Dinner at 8"));
    assert!(
        !first.mentions("urgency"),
        "nested hint strings are not arguments"
    );
    assert_eq!(seen.calls[1].summary(), "Garden Club");
    assert_eq!(seen.calls[1].body(), "New message");
    assert!(!seen.calls[1].mentions(":1.0"), "signals are not calls");
}

#[test]
fn script_results_are_truthy_as_in_javascript() {
    for falsy in [json!(null), json!(false), json!(0), json!(""), json!([])] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for value in [json!(true), json!(2), json!("x"), json!([0]), json!({})] {
        assert!(truthy(&value), "{value}");
    }
}

#[test]
fn test_hooks_and_options_become_selectors_and_arguments() {
    assert_eq!(testid("chat-row"), "[data-testid=\"chat-row\"]");
    let options = AppOptions::new("/h")
        .broker("mqtt://127.0.0.1:1")
        .qr_png("/h/qr.png")
        .arg("--bare");
    assert_eq!(
        options.to_args(),
        [
            "--home",
            "/h",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--qr-png",
            "/h/qr.png",
            "--bare"
        ]
    );
}

#[test]
fn a_missing_program_names_its_package() {
    let err = find_program("no-such-program-tandem", "some-package")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-program-tandem") && err.contains("some-package"),
        "{err}"
    );
}

/// The real screen, bus and monitor: a notification sent on the bus (as the app's plugin
/// does, here by `dbus-send`) is seen with its title and body; everything stops on drop.
#[test]
fn a_notification_sent_on_the_private_bus_is_seen_and_everything_stops() {
    let display = Display::start().unwrap();
    assert!(display.name().starts_with(':'), "{}", display.name());
    display.unfocus().unwrap();
    assert_eq!(
        display.focus().unwrap(),
        x11rb::NONE,
        "no window holds the focus"
    );
    let bus = SessionBus::start().unwrap();
    let watch = NotificationWatch::start(&bus).unwrap();
    let pids = [display.pid(), bus.pid(), watch.pid()];
    let sent = Command::new(find_program("dbus-send", "dbus-bin").unwrap())
        .arg(format!("--bus={}", bus.address()))
        .args([
            "--print-reply",
            "--dest=org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications.Notify",
            "string:Tandem",
            "uint32:0",
            "string:",
            "string:Bob",
            "string:Dinner at 8?",
            "array:string:",
            "dict:string:string:",
            "int32:-1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // No notification daemon answers on this bus: the call fails, but it was made.
    assert!(!sent.success());
    let call = watch
        .wait_for("Dinner at 8", Duration::from_secs(10))
        .unwrap();
    assert_eq!(call.summary(), "Bob");
    assert_eq!(call.body(), "Dinner at 8?");
    let err = watch
        .wait_for("never sent", Duration::from_millis(100))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("never sent") && err.contains("Dinner"),
        "{err}"
    );
    drop(watch);
    drop(bus);
    drop(display);
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty(),
            "process {pid} still runs after drop: {state}"
        );
    }
}
