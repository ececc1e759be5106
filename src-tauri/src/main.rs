//! The `tandem-desktop` binary.
// Hide the console window of release builds on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    tandem_desktop_lib::run()
}
